"""The threshold closed form is memoised per augmented system (in memory and on disk) with identical results, and a
SymPy attempt stopped by its time guard is never remembered."""
import pytest
import sympy as sp

import symvae
from symvae._cache import CacheEntry, content_key
from symvae.derive import derive_dynamics
from symvae.numerics import _closed_forms, _thresholds
from symvae.numerics._closed_forms import SolveTimeout, memoised
from symvae.numerics._systems import as_compiled
from symvae.numerics._thresholds import threshold

PARAMS = dict(beta=1.0, eta=1.0, lam=0.1, rho=1.0, tau=0.05)


@pytest.fixture(scope="module")
def base():
    return as_compiled(derive_dynamics(symvae.make_model("base", M=1, M_star=1)))


def test_a_timeout_is_not_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMVAE_CACHE", str(tmp_path))
    monkeypatch.setattr(_closed_forms, "_MEMO", {})
    calls = []

    def stopped():
        calls.append("stopped")
        raise SolveTimeout()

    with pytest.raises(SolveTimeout):
        memoised("test-tag", "key", stopped)
    assert CacheEntry(content_key("memo", "test-tag", "key")).get_pickle("value.pickle") is None
    assert memoised("test-tag", "key", lambda: calls.append("ok") or None) is None  # computed: None is a result
    assert memoised("test-tag", "key", lambda: calls.append("again") or 1) is None  # remembered
    monkeypatch.setattr(_closed_forms, "_MEMO", {})
    assert memoised("test-tag", "key", lambda: calls.append("disk") or 1) is None  # from disk
    assert calls == ["stopped", "ok"]


@pytest.mark.parametrize("name", ["collapse", "noise"])
def test_memoised_closed_form_is_identical_cold_warm_and_from_disk(base, name, tmp_path, monkeypatch):
    """Cold (empty cache and memory), warm (memory) and from disk (memory cleared): the same closed form, text and
    value; the symbolic stage runs once. The collapse closed form is the published ((rho+eta)^2 - lam - lam^2) /
    ((rho+eta)(1+lam)), evaluated here by SymPy independently of the solver."""
    threshold(name, base, PARAMS, digits=20)  # builds the augmented system in the usual cache
    monkeypatch.setenv("SYMVAE_CACHE", str(tmp_path))
    monkeypatch.setattr(_closed_forms, "_MEMO", {})
    runs = []
    inner = _thresholds._closed_form_candidates
    monkeypatch.setattr(_thresholds, "_closed_form_candidates", lambda *a: runs.append(1) or inner(*a))
    cold = threshold(name, base, PARAMS, digits=20)
    warm = threshold(name, base, PARAMS, digits=20)
    monkeypatch.setattr(_closed_forms, "_MEMO", {})
    disk = threshold(name, base, PARAMS, digits=20)
    assert len(runs) == 1
    assert cold.closed_form is not None
    for r in (warm, disk):
        assert r.closed_form == cold.closed_form and r.closed_form_text == cold.closed_form_text
        assert r.closed_form_digits == cold.closed_form_digits and r.text == cold.text
    if name == "collapse":
        syms = {s.name: s for s in cold.closed_form.free_symbols}
        rho, eta, lam = (sp.Rational(str(PARAMS[k])) for k in ("rho", "eta", "lam"))
        published = ((rho + eta) ** 2 - lam - lam ** 2) / ((rho + eta) * (1 + lam))
        value = cold.closed_form.subs({syms[k]: sp.Rational(str(PARAMS[k])) for k in syms})
        assert sp.simplify(value - published) == 0
