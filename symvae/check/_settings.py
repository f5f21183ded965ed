"""Settings a hand derivation can be written in, as a registry: ``dynamics`` now, ``statics`` later.

A setting turns a model into the equations symvae derives for it (a ``TargetSystem``) and says which left-hand sides
state one of its equations. Everything else (reading files, comparing, reporting) is shared.
"""
from __future__ import annotations

import abc
import dataclasses
import functools
from typing import ClassVar, Mapping

import sympy as sp

from ..derive import derive_dynamics
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
    """

    setting: "Setting"
    model: Model
    equations: Mapping[sp.Symbol, sp.Expr]
    params: tuple[sp.Symbol, ...]

    @functools.cached_property
    def table(self) -> SymbolTable:
        return SymbolTable(self.model)

    @property
    def scalar_notation(self) -> bool:
        """M = M* = 1: order parameters are written without indices (``Q`` for ``Q_11``)."""
        return self.model.M == 1 and self.model.M_star == 1

    @functools.cached_property
    def element_of(self) -> dict[sp.Symbol, tuple[str, str]]:
        """Each order-parameter symbol -> (block name, index text), e.g. ``Q_12 -> ("Q", "12")``, ``D_1 -> ("D", "1")``.

        Aliases of the tied variant are left out (``m_tilde`` is ``m`` there): a symbol maps to its own block.
        """
        T = self.table
        out: dict[sp.Symbol, tuple[str, str]] = {}
        for block, value in T.matrices().items():
            if isinstance(value, sp.Matrix):
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
        if self.scalar_notation and symbol in self.element_of:
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

    Equations are compared as "unknown = right-hand side": the user's right-hand side must equal symvae's.
    """

    name: ClassVar[str]
    lhs_kind: ClassVar[str]

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
    """Saddle-point (replica) equations of the statics setting: a placeholder until ``symvae.derive`` has them."""

    name = "statics"
    lhs_kind = "value"

    def system(self, model: Model) -> TargetSystem:
        raise InvalidInputError("statics equations are not available yet; only 'setting: dynamics' can be checked")

    def equation_name(self, label: str) -> str:
        return label


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
