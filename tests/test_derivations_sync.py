"""derivations/ is written by symvae itself and must be in sync with the engine."""
import pathlib

from symvae.report import derivation_files

ROOT = pathlib.Path(__file__).resolve().parents[1] / "derivations"


def test_dynamics_derivations_in_sync():
    expected = derivation_files()
    stale = [rel for rel, text in expected.items()
             if not (ROOT / rel).exists() or (ROOT / rel).read_text() != text]
    assert not stale, f"out of date (run `symvae derive --all --out derivations/`): {stale}"
    on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "dynamics").glob("*.md")}
    extra = on_disk - set(expected)
    assert not extra, f"files no longer generated: {sorted(extra)}"
