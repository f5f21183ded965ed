"""Settings a hand derivation can be written in, as a registry: ``dynamics`` (ODEs) and ``statics`` (saddle point).

A setting turns a model into the equations symvae derives for it (a ``TargetSystem``) and says which left-hand sides
state one of its equations. Reading files and reporting are shared; ``compares`` says how an equation is compared:
``"rhs"`` (right-hand sides must be equal, dynamics) or ``"residual"`` (equations F = 0 must agree up to a non-vanishing
factor, statics; see ``symvae.check._residual``).
"""
from __future__ import annotations

import abc
import dataclasses
import functools
from typing import ClassVar, Mapping

import sympy as sp

from ..derive import derive_dynamics, derive_statics
from ..errors import InvalidInputError
from ..model import Model, SymbolTable, t

__all__ = ["Setting", "TargetSystem", "DynamicsSetting", "StaticsSetting", "SETTINGS", "register_setting",
           "get_setting"]


@dataclasses.dataclass(frozen=True, eq=False)
class TargetSystem:
    """The equations symvae derives for one model in one setting: one right-hand side per unknown.

    Attributes:
        setting: the setting that produced it.
        model: the model definition.
        equations: unknown (a state symbol such as ``Q_12``) -> symvae's right-hand side.
        params: the parameters the right-hand sides may contain (``t`` is added for time-dependent systems).
        extra_blocks: unknowns that are not order parameters of the model, block name -> matrix of symbols (statics:
            the conjugate matrices ``K`` and ``H``).
        free_energy: the function whose gradient the equations are (statics), else None.
    """

    setting: "Setting"
    model: Model
    equations: Mapping[sp.Symbol, sp.Expr]
    params: tuple[sp.Symbol, ...]
    extra_blocks: Mapping[str, sp.Matrix] = dataclasses.field(default_factory=dict)
    free_energy: sp.Expr | None = None

    @functools.cached_property
    def table(self) -> SymbolTable:
        return SymbolTable(self.model)

    def matrices(self) -> dict[str, object]:
        """Every named block: the model's order parameters (``SymbolTable.matrices``), then ``extra_blocks``."""
        out = dict(self.table.matrices())
        out.update(self.extra_blocks)
        return out

    def latex_names(self) -> dict[sp.Symbol, str]:
        """LaTeX spelling of every symbol, the extra blocks' entries included (``K_12`` -> ``K_{12}``)."""
        out = dict(self.table.latex_names())
        for block, value in self.extra_blocks.items():
            for sym in value:
                if isinstance(sym, sp.Symbol):
                    out.setdefault(sym, f"{block}_{{{sym.name.rsplit('_', 1)[1]}}}")
        return out

    def is_scalar_block(self, block: str) -> bool:
        """Whether a block has a single entry (then M = M* = 1 reports call it by the block's name)."""
        value = self.matrices().get(block)
        if isinstance(value, sp.MatrixBase):
            return value.shape == (1, 1)
        if isinstance(value, tuple):
            return len(value) == 1
        return True

    @property
    def scalar_notation(self) -> bool:
        """M = M* = 1: order parameters are written without indices (``Q`` for ``Q_11``)."""
        return self.model.M == 1 and self.model.M_star == 1

    @functools.cached_property
    def element_of(self) -> dict[sp.Symbol, tuple[str, str]]:
        """Each order-parameter symbol -> (block name, index text), e.g. ``Q_12 -> ("Q", "12")``, ``D_1 -> ("D", "1")``.

        Aliases of the tied variant are left out (``m_tilde`` is ``m`` there): a symbol maps to its own block.
        """
        out: dict[sp.Symbol, tuple[str, str]] = {}
        for block, value in self.matrices().items():
            if isinstance(value, sp.MatrixBase):
                for i in range(value.rows):
                    for j in range(value.cols):
                        sym = value[i, j]
                        if isinstance(sym, sp.Symbol) and sym.name == f"{block}_{i + 1}{j + 1}":
                            out.setdefault(sym, (block, f"{i + 1}{j + 1}"))
            elif isinstance(value, tuple):
                for k, sym in enumerate(value):
                    out.setdefault(sym, (block, str(k + 1)))
            elif isinstance(value, sp.Symbol):
                out.setdefault(value, (block, ""))
        return out

    def display_name(self, symbol: sp.Symbol) -> str:
        """symvae's name of a symbol in this system's notation (``Q`` for ``Q_11`` when M = M* = 1)."""
        if self.scalar_notation and symbol in self.element_of and self.is_scalar_block(self.element_of[symbol][0]):
            return self.element_of[symbol][0]
        return symbol.name

    def equation_name(self, symbol: sp.Symbol) -> str:
        """The report name of the equation for an unknown, e.g. ``dQ/dt`` or ``dQ_12/dt``."""
        return self.setting.equation_name(self.display_name(symbol))


class Setting(abc.ABC):
    """A setting in which equations are derived and checked. Contract for whoever adds one:

    1. ``name`` is the value of the header's ``setting:`` key; register the instance with ``register_setting``.
    2. ``lhs_kind`` says which left-hand sides state an equation: ``"derivative"`` (``\\frac{dQ}{dt} = ...``) or
       ``"value"`` (``Q = ...``, a saddle-point equation). Other left-hand sides are definitions of the user's
       intermediate symbols.
    3. ``system(model)`` returns the ``TargetSystem`` symvae derives; it raises ``InvalidInputError`` (one line) if the
       setting cannot derive it.
    4. ``equation_name(label)`` names an equation in reports from the display name of its unknown.

    5. ``compares``: ``"rhs"`` — equations are "unknown = right-hand side" and the user's right-hand side must equal
       symvae's; ``"residual"`` — equations are F = 0 and must agree up to a factor that does not vanish.
    """

    name: ClassVar[str]
    lhs_kind: ClassVar[str]
    compares: ClassVar[str] = "rhs"

    @abc.abstractmethod
    def system(self, model: Model) -> TargetSystem:
        """symvae's equations for ``model`` in this setting."""

    @abc.abstractmethod
    def equation_name(self, label: str) -> str:
        """Report name of the equation of the unknown displayed as ``label``."""


class DynamicsSetting(Setting):
    """Online-SGD ODEs dX/dt = F(X, t; p), derived by ``symvae.derive.derive_dynamics``."""

    name = "dynamics"
    lhs_kind = "derivative"

    def system(self, model: Model) -> TargetSystem:
        derived = derive_dynamics(model)
        return TargetSystem(self, model, derived.equations(), tuple(dict.fromkeys(derived.params + (t,))))

    def equation_name(self, label: str) -> str:
        return f"d{label}/dt"


class StaticsSetting(Setting):
    """Replica saddle-point equations F = grad f = 0, derived by ``symvae.derive.derive_statics``.

    Unknowns: the order parameters (m, m_tilde, Q, Q_tilde, R, D as the variant has them) and the conjugate matrices
    K (symmetric, P x P) and H (P x P), P the number of distinct local fields (2M, or M for tied weights); the
    parameters include ``alpha``. ``free_energy`` is the RS free energy per sample (``replica_free_energy``).
    """

    name = "statics"
    lhs_kind = "value"
    compares = "residual"

    def system(self, model: Model) -> TargetSystem:
        derived = derive_statics(model)
        extra = {}
        for block in ("K", "H"):
            symbols = derived.blocks.get(block, ())
            if not symbols:
                continue
            P = max(int(s.name.rsplit("_", 1)[1][0]) for s in symbols)
            by_index = {s.name.rsplit("_", 1)[1]: s for s in symbols}

            def entry(i, j, _by=by_index, _sym=block == "K"):
                key = f"{min(i, j) + 1}{max(i, j) + 1}" if _sym else f"{i + 1}{j + 1}"
                return _by[key]

            extra[block] = sp.ImmutableMatrix(P, P, entry)
        return TargetSystem(self, model, derived.equations(), tuple(derived.params), extra,
                            derived.observables.get("free_energy"))

    def equation_name(self, label: str) -> str:
        return f"df/d{label}"


#: name -> setting; ``register_setting`` adds one.
SETTINGS: dict[str, Setting] = {}


def register_setting(setting: Setting, *, replace: bool = False) -> Setting:
    """Add a setting to the registry.

    Arguments:
        setting: the instance to register under ``setting.name``.
        replace: allow replacing a registered setting of the same name (e.g. the statics placeholder).

    Returns:
        The setting.

    Raises:
        InvalidInputError: if the name is taken and ``replace`` is False.
    """
    if setting.name in SETTINGS and not replace:
        raise InvalidInputError(f"a setting named {setting.name!r} is already registered")
    SETTINGS[setting.name] = setting
    return setting


def get_setting(name: str) -> Setting:
    """The registered setting called ``name``.

    Raises:
        InvalidInputError: unknown setting.
    """
    if name not in SETTINGS:
        raise InvalidInputError(f"unknown setting {name!r}; known: {', '.join(SETTINGS)}")
    return SETTINGS[name]


register_setting(DynamicsSetting())
register_setting(StaticsSetting())
