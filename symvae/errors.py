"""Exceptions raised by symvae.

Every user-facing failure is one of these, so the CLI can turn it into a one-line message: ``InvalidInputError`` and
``DerivationError`` (the input cannot be used) exit with code 2; any other ``SymvaeError`` is a numerical method that
did not succeed (no saddle point, no convergence, ...) and exits with code 1.
"""


class SymvaeError(Exception):
    """Base class of all symvae errors."""


class InvalidInputError(SymvaeError, ValueError):
    """A parameter, state or option is not admissible (negative variance, non-PSD Gram matrix, unknown variant ...)."""


class DerivationError(SymvaeError):
    """The model definition cannot be turned into an N -> infinity ODE (e.g. a drift that grows with N)."""
