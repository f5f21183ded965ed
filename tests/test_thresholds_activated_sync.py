"""The activated-model table of derivations/thresholds.md (erf decoders, erf on both sides: certified collapse
thresholds) against the engine. The rest of the file is checked in tests/test_thresholds.py; this half is a file of
its own so that the two run on different workers."""
import pathlib

from symvae.numerics._threshold_report import activated_rows, activated_rows_in


def test_derivations_thresholds_activated_rows_in_sync():
    text = (pathlib.Path(__file__).resolve().parents[1] / "derivations" / "thresholds.md").read_text()
    assert activated_rows_in(text) == activated_rows(), "out of date (run `symvae derive --all --out derivations/`)"
