"""Validation of statics parameters: ``check_alpha`` and ``check_params`` live in ``symvae.simulate._params`` (the
finite-N ERM of the simulate stage uses them too); imported here for the statics modules."""
from ..simulate._params import check_alpha as check_alpha
from ..simulate._params import check_params as check_params

__all__ = ["check_alpha", "check_params"]
