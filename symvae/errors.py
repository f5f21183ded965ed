"""Exceptions raised by symvae.

Every user-facing failure is one of these, so the CLI can turn it into a one-line message with exit code 2.
"""


class SymvaeError(Exception):
    """Base class of all symvae errors."""


class InvalidInputError(SymvaeError, ValueError):
    """A parameter, state or option is not admissible (negative variance, non-PSD Gram matrix, unknown variant ...)."""


class DerivationError(SymvaeError):
    """The model definition cannot be turned into an N -> infinity ODE (e.g. a drift that grows with N)."""


class CacheError(SymvaeError):
    """A generated-code cache entry could not be written or read."""
