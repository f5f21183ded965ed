"""The build chain ``Model -> per-sample gradient (SymPy) -> generated simulator module (cached) -> Simulator``.

The generated module holds ``grad_into(t, y, p, out)`` -- the coefficients a_v, c_vw of
grad_v L = a_v x/sqrt(N) + sum_w c_vw w/N, the scalar gradients dL/ds and the step sizes, all from
``symvae.derive.gradient_coefficients`` of the model's literal per-sample loss -- followed by the numba SGD kernel of
``_sgd_template.py``. It is written to ``<cache>/<content hash>/simulator.py`` so numba's ``cache=True`` works.
"""
from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import threading
from typing import Mapping

import numpy as np
import sympy as sp

from .._cache import content_key
from ..codegen import FunctionSpec, generate_source, load_cached_module
from ..derive import gradient_coefficients
from ..errors import InvalidInputError
from ..model import Model, SymbolTable, Vector, t
from ..model import N as N_sym

__all__ = ["Simulator", "build_simulator"]

_TEMPLATE = pathlib.Path(__file__).with_name("_sgd_template.py")
_LOCK = threading.Lock()
_LOADED: dict[str, "Simulator"] = {}    # by content hash of the generated code
_BY_MODEL: dict[str, "Simulator"] = {}  # by Model.key, to skip the symbolic work on repeated calls


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where each quantity lives: rows of the vector array, slots of the gradient input y, offsets of its output."""

    rows: dict[Vector, int]                 # canonical vector -> row (teacher first, then trainable)
    inputs: tuple[sp.Symbol, ...]           # the y of grad_into(t, y, p, out)
    fields: tuple[tuple[int, int], ...]     # (slot, row) of each local field the gradient needs
    overlaps: tuple[tuple[int, int, int, bool], ...]  # (slot, row u, row v, needed by the gradient)
    scalars: tuple[tuple[sp.Symbol, int], ...]        # learned scalars (D_k, sigma2) and their slots
    x_sq_slot: int
    N_slot: int
    n_train: int
    outputs: tuple[sp.Expr, ...]


def _layout(T: SymbolTable) -> _Layout:
    model = T.model
    a, c, scalar_grads = gradient_coefficients(T)
    trainable = T.trainable
    n_train = len(trainable)
    rows = {v: k for k, v in enumerate(T.teacher + trainable)}
    blocks = T.state_blocks
    scalars = [s for s in blocks.get("D", []) + blocks.get("sigma2", [])]
    step_v = [model.training.step("W" if v.family == "W" else "W_tilde") for v in trainable]
    # a scalar s trained with step tau_s / N^k (k from the derivation: 1 for D, 2 for sigma^2)
    step_s = [model.training.step("D" if s in T.D else "sigma2") / N_sym ** scalar_grads[s][1] for s in scalars]
    outputs = ([a[v] for v in trainable]
               + [c.get((v, w), sp.Integer(0)) for v in trainable for w in trainable]
               + [scalar_grads[s][0] for s in scalars] + step_v + step_s)
    used = set().union(*(e.free_symbols for e in outputs))

    distinct_fields = list(dict.fromkeys(T.fields))
    field_row = {T.field(v): rows[T.canonical(v)] for v in T.all_vectors}
    overlap_syms = list(T.overlap_pairs)
    inputs = distinct_fields + overlap_syms + scalars + [T.x_sq, N_sym]
    slot = {s: k for k, s in enumerate(inputs)}
    fields = tuple((slot[f], field_row[f]) for f in distinct_fields if f in used)
    overlaps = tuple((slot[o], rows[u], rows[v], o in used) for o, (u, v) in T.overlap_pairs.items())
    return _Layout(rows=rows, inputs=tuple(inputs), fields=fields, overlaps=overlaps,
                   scalars=tuple((s, slot[s]) for s in scalars),
                   x_sq_slot=slot[T.x_sq] if T.x_sq in used else -1, N_slot=slot[N_sym], n_train=n_train,
                   outputs=tuple(outputs))


def _constants(T: SymbolTable, L: _Layout) -> str:
    """The layout as module constants (numba freezes global arrays and integers into the compiled kernel)."""
    nt, ns = L.n_train, len(L.scalars)

    def arr(values, dtype="int64"):
        return f"numpy.array({list(values)!r}, dtype=numpy.{dtype})"

    lines = ["# --- layout of this model (symvae.simulate) ---",
             f"M_STAR = {T.M_star}", f"N_TRAIN = {nt}", f"N_SCAL = {ns}", f"N_INPUT = {len(L.inputs)}",
             f"N_SLOT = {L.N_slot}", f"XSQ_SLOT = {L.x_sq_slot}",
             f"FIELD_SLOT = {arr(f[0] for f in L.fields)}", f"FIELD_ROW = {arr(f[1] for f in L.fields)}",
             f"OVL_SLOT = {arr(o[0] for o in L.overlaps)}", f"OVL_ROW_U = {arr(o[1] for o in L.overlaps)}",
             f"OVL_ROW_V = {arr(o[2] for o in L.overlaps)}",
             f"OVL_NEEDED = {arr((bool(o[3]) for o in L.overlaps), 'bool_')}",
             f"SCAL_SLOT = {arr(s[1] for s in L.scalars)}",
             f"SCAL_POSITIVE = {arr((bool(s[0].is_positive) for s in L.scalars), 'bool_')}",
             "OFF_A = 0", f"OFF_C = {nt}", f"OFF_G = {nt + nt * nt}", f"OFF_STEP_V = {nt + nt * nt + ns}",
             f"OFF_STEP_S = {2 * nt + nt * nt + ns}", f"N_OUT = {len(L.outputs)}", "", ""]
    return "\n".join(lines)


def _params(T: SymbolTable, L: _Layout) -> tuple[sp.Symbol, ...]:
    """Runtime parameters: every free symbol of the gradient and steps, the data parameters and the batch size."""
    free = set().union(*(e.free_symbols for e in L.outputs)) - set(L.inputs) - {t}
    free |= set(T.rho) | {T.eta} | T.model.training.batch_expr.free_symbols
    return tuple(sorted(free, key=lambda s: s.name))


class Simulator:
    """The compiled online-SGD simulator of one model. Build with ``build_simulator``.

    Attributes:
        model: the model definition; table: its ``SymbolTable``.
        params: runtime parameters (by name: ``param_names``), in the order of the parameter vector.
        module: the generated module (``grad_into``, ``sgd_step``, ``run_seeds`` ...); path: its file.
    """

    def __init__(self, model: Model, table: SymbolTable, layout: _Layout, params, module, path):
        self.model = model
        self.table = table
        self.layout = layout
        self.params = params
        self.param_names = tuple(p.name for p in params)
        self.module = module
        self.path = path
        #: time-dependent parameters (``symvae.codegen._schedule.Program``): this simulator's parameters -> the
        #: module's at time t; ``None``: the module takes ``params`` as they are
        self.program = None
        #: the simulator without the schedules whose kernel this one runs (``None``: no schedules)
        self.base = None
        self._observables_fn = None  # lambdified observables of symvae.derive, built on first use

    @property
    def n_vectors(self) -> int:
        """K: the number of N-dimensional vectors simulated (teacher and trainable)."""
        return len(self.layout.rows)

    def param_vector(self, values: Mapping[str, float]) -> np.ndarray:
        """Order {name: value} as the parameter vector (extra names are ignored).

        Raises:
            InvalidInputError: a parameter is missing or not finite.
        """
        missing = [n for n in self.param_names if n not in values]
        if missing:
            raise InvalidInputError(f"missing parameter value(s): {', '.join(missing)}")
        p = np.array([float(values[n]) for n in self.param_names])
        if not np.all(np.isfinite(p)):
            raise InvalidInputError(f"parameters must be finite: {dict(zip(self.param_names, p.tolist()))}")
        return p

    def batch_size(self, values: Mapping[str, float]) -> int:
        """The mini-batch size b for these parameter values (must be a positive integer)."""
        b = self.model.training.batch_expr
        value = b.subs({s: values[s.name] for s in b.free_symbols if s.name in values})
        if not value.is_number or float(value) != round(float(value)) or float(value) < 1:
            raise InvalidInputError(f"the batch size must be a positive integer, got {value}")
        return int(round(float(value)))

    def input_vector(self, scalars: Mapping[str, float]) -> np.ndarray:
        """A fresh gradient input y with the learned scalars (``D_1``.., ``sigma2``) set; other slots are filled
        by the kernel."""
        z = np.zeros(len(self.layout.inputs))
        for s, slot in self.layout.scalars:
            z[slot] = float(scalars[s.name])
        return z

    def gradient(self, vectors: np.ndarray, X: np.ndarray, scalars: Mapping[str, float],
                 param_values: Mapping[str, float], t: float = 0.0) -> dict[str, np.ndarray]:
        """The mini-batch gradient the simulator applies, read back from one call of its SGD step.

        Arguments:
            vectors: (K, N) array, rows W*_1..W*_M*, then W_1..W_M, then (untied) W~_1..W~_M.
            X: (b, N) samples; scalars: learned scalars by name (``D_1``.., ``sigma2``); t: time for beta(t).

        Returns:
            ``{"W": (N, M), "W_tilde": (M, N) [untied], "D": (M,) [learned], "sigma2": () [learned]}``: the
            gradient of the per-sample loss averaged over the rows of ``X`` (= -(new - old) / step, so step sizes of
            order one in ``param_values`` keep it accurate to round-off).

        Raises:
            InvalidInputError: a parameter is missing, or the step fails (non-finite gradient, D or sigma2 <= 0).
        """
        mod = self.module
        V = np.ascontiguousarray(vectors, dtype=float)
        X = np.ascontiguousarray(np.atleast_2d(X), dtype=float)
        z = self.input_vector(scalars)
        z0 = z.copy()
        p = self.param_vector(param_values)
        if self.program is not None:
            p = np.ascontiguousarray(self.program.evaluate(float(t), p), dtype=float)
        mod.refresh_overlaps(V, z, True)
        out = np.empty(mod.N_OUT)
        nt, ns = self.layout.n_train, len(self.layout.scalars)
        V_new = V.copy()
        status = mod.sgd_step(float(t), V, V_new, X, z, p, out, np.empty((len(X), nt)), np.empty((nt, nt)),
                              np.empty(max(ns, 1)))
        if status != mod.STATUS_OK:
            raise InvalidInputError("the SGD step failed at this point: a non-finite gradient, or D or sigma2 left "
                                    "(0, inf)")
        Ms, M = self.table.M_star, self.table.M
        steps_v = out[mod.OFF_STEP_V:mod.OFF_STEP_V + nt]
        grad_rows = -(V_new[Ms:] - V[Ms:]) / steps_v[:, None]
        result = {"W": grad_rows[:M].T.copy()}
        if not self.table.tied:
            result["W_tilde"] = grad_rows[M:].copy()
        steps_s = out[mod.OFF_STEP_S:mod.OFF_STEP_S + ns]
        for k, (s, slot) in enumerate(self.layout.scalars):
            g = -(z[slot] - z0[slot]) / steps_s[k]
            if s.name == "sigma2":
                result["sigma2"] = np.asarray(g)
            else:
                result.setdefault("D", np.zeros(M))[int(s.name.split("_")[1]) - 1] = g
        return result


def build_simulator(model: Model) -> Simulator:
    """Generate (or reuse from the on-disk cache) the simulator module of ``model`` and load it.

    Arguments:
        model: the model definition; nothing variant-specific is typed in, the gradient comes from its loss.

    Returns:
        A ``Simulator``; the same object for the same model within a process.

    Raises:
        DerivationError: the loss cannot be differentiated into the a_v, c_vw form.
    """
    if model.vae.encoder_activation != "linear" or model.vae.decoder_activation != "linear":
        raise InvalidInputError("this simulator is for linear activations; use symvae.simulate.simulate_nonlinear")
    with _LOCK:
        if model.key in _BY_MODEL:
            return _BY_MODEL[model.key]
    base_model, schedules = model.split_schedules()
    if schedules:  # the base model's kernel, the schedules as runtime programs: no new module per expression
        sim = _scheduled(model, build_simulator(base_model), schedules)
        with _LOCK:
            _BY_MODEL[model.key] = sim
        return sim
    T = SymbolTable(model)
    L = _layout(T)
    params = _params(T, L)
    template = _TEMPLATE.read_text()
    text = sp.srepr((L.inputs, L.outputs, params)) + _constants(T, L)
    key = content_key("simulator", text, hashlib.sha256(template.encode()).hexdigest())
    with _LOCK:
        if key in _LOADED:
            _BY_MODEL[model.key] = _LOADED[key]
            return _LOADED[key]
        header = f"online-SGD simulator\nmodel: {dict(model.describe())}\nkey: {key}"

        def make_source() -> str:
            source = generate_source([FunctionSpec("grad", list(L.outputs), backends=("numba",))], L.inputs,
                                     params, header=header, templates=("program",))
            return source + "\n\n" + _constants(T, L) + template

        module, path = load_cached_module(key, make_source, prefix="symvae_simulator")
        sim = Simulator(model, T, L, params, module, path)
        _LOADED[key] = sim
        _BY_MODEL[model.key] = sim
        return sim


def _scheduled(model: Model, base: Simulator, schedules) -> Simulator:
    """The simulator of ``model``: the kernel of ``base`` (its model without the schedules) with a program giving the
    kernel's parameters from ``model``'s at each step's time."""
    from ..codegen._schedule import compile_program

    scheduled = dict(schedules)
    kept = [q for q in base.params if q not in scheduled]
    free = set(kept).union(*(e.free_symbols for e in scheduled.values())) - {t}
    params = tuple(sorted(free, key=lambda s: s.name))
    index = {q.name: i for i, q in enumerate(params)}
    copies = [(j, index[q.name]) for j, q in enumerate(base.params) if q not in scheduled]
    exprs = [(j, scheduled[q]) for j, q in enumerate(base.params) if q in scheduled]
    labels = [f"{q.name}(t) = {scheduled[q]}" if q in scheduled else q.name for q in base.params]
    sim = Simulator(model, SymbolTable(model), base.layout, params, base.module, base.path)
    sim.base = base
    sim.program = compile_program(len(base.params), copies=copies, exprs=exprs, param_index=index,
                                  labels=tuple(labels))
    return sim
