"""``check``: compare a hand derivation with the equations symvae derives, equation by equation.

Each setting's ``compares`` names its comparison (``"rhs"``: ``_rhs.check_rhs``; ``"residual"``:
``_residual.check_statics``); this module only reads the file and dispatches, so the comparisons do not import
each other or this module.
"""
from __future__ import annotations

from ..errors import InvalidInputError
from ._reader import HandDerivation, read_hand_derivation
from ._report import VERDICTS, CheckReport, EquationResult
from ._residual import check_statics
from ._rhs import check_rhs

__all__ = ["EquationResult", "CheckReport", "check", "check_file", "VERDICTS", "COMPARISONS"]

#: The comparison of each value of ``Setting.compares``.
COMPARISONS = {"rhs": check_rhs, "residual": check_statics}


def check(hand: HandDerivation, *, points: int = 8, seed: int = 0, allow_missing: bool = False) -> CheckReport:
    """Check every equation of a hand derivation against symvae's, with its setting's comparison.

    Arguments:
        hand: the file, read by ``read_hand_derivation``.
        points: number of random admissible points of the numeric test.
        seed: the points' random seed.
        allow_missing: do not count equations missing from the file as a mismatch.

    Returns:
        The ``CheckReport``.
    """
    comparison = COMPARISONS.get(hand.setting.compares)
    if comparison is None:
        raise InvalidInputError(f"setting {hand.setting.name!r} compares by {hand.setting.compares!r}; known: "
                                f"{', '.join(COMPARISONS)}")
    return comparison(hand, points=points, seed=seed, allow_missing=allow_missing)


def check_file(path, *, M: int | None = None, M_star: int | None = None, points: int = 8, seed: int = 0,
               allow_missing: bool = False, time_limit: float | None = None) -> CheckReport:
    """Read a hand-derivation file and check it (``read_hand_derivation`` then ``check``).

    A ``.py`` file is code and is run (in a child process, with ``time_limit`` seconds); LaTeX files are only read.

    Arguments:
        path: the file (.md, .tex or .py).
        M, M_star: override the header's sizes.
        points, seed, allow_missing: as in ``check``.
        time_limit: seconds a ``.py`` file may run (default ``SYMVAE_CHECK_TIME_LIMIT`` or 60).

    Returns:
        The ``CheckReport``.

    Raises:
        CheckInputError: the file is unusable (see ``read_hand_derivation``).
    """
    return check(read_hand_derivation(path, M=M, M_star=M_star, time_limit=time_limit), points=points, seed=seed,
                 allow_missing=allow_missing)
