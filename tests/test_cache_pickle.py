"""The cache's pickles of SymPy expressions (``symvae._cache._Pickler``): sums and products are rebuilt from their
stored arguments instead of being evaluated again. The ground truth is SymPy's own pickling (which re-evaluates every
node) and the expressions as built: the loaded objects must be equal, print the same ``srepr`` and hash the same,
and a derivation must give the same content key as the one derived in this process.
"""
import io
import pickle

import sympy as sp

import symvae
from symvae._cache import CacheEntry, _Pickler

from helpers import model


def _dumps(obj) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def _expressions():
    x, y, z = sp.symbols("x y z", real=True)
    a, b = sp.symbols("a b", commutative=False)
    f = sp.Function("f")
    return [
        x + 2 * y - sp.Rational(3, 7) * x * y ** 2,
        sp.sqrt(2) * sp.erf(x / sp.sqrt(1 + y ** 2)) + sp.exp(-x * y / 2) * (x - y) ** 3,
        sp.Max(x, y + 1, 0) * z - sp.Min(x, 2 * z),
        sp.Piecewise((x * y + 1, x > 0), (-x - y, True)) * (1 + z),
        sp.atan(x * y) / (sp.pi * (1 + x ** 2)) + f(x + y) * f(2 * x),
        a * b - 2 * b * a + x * a,  # non-commutative factors keep their order
        sp.Integer(0) + 0 * x, sp.Integer(3), -x, x,
        sp.Matrix([[x + y, x * y], [1 / (x + 1), x - z]]),
    ]


def test_expressions_load_as_sympy_pickles_them():
    for expr in _expressions():
        ours = pickle.loads(_dumps(expr))
        theirs = pickle.loads(pickle.dumps(expr, protocol=pickle.HIGHEST_PROTOCOL))
        assert ours == expr == theirs
        assert sp.srepr(ours) == sp.srepr(expr) == sp.srepr(theirs)
        assert isinstance(expr, sp.MatrixBase) or hash(ours) == hash(expr)
        if isinstance(expr, sp.Expr):
            assert ours.is_commutative == expr.is_commutative
            # the rebuilt object behaves like the evaluated one in further arithmetic
            assert sp.expand(ours * 2 - expr * 2) == 0


def test_rewritten_pickle_uses_the_fast_reduction(tmp_path):
    x, y = sp.symbols("x y")
    expr = (x + 1) * (y - 2) + x * y
    entry = CacheEntry("pickletest", root=tmp_path)
    entry.write_bytes("old.pickle", pickle.dumps(expr, protocol=pickle.HIGHEST_PROTOCOL))  # the former format
    assert b"_from_args" not in entry.read_bytes("old.pickle")
    assert entry.get_pickle("old.pickle") == expr
    assert b"_from_args" in entry.read_bytes("old.pickle")  # rewritten once, in the new format
    assert entry.get_pickle("old.pickle") == expr


def test_derivation_round_trip_keeps_the_content_key(tmp_path):
    system = symvae.derive_dynamics(model("base", M=2, M_star=1))
    system.key  # as cached_derivation does: hashed before pickling
    entry = CacheEntry("derivationtest", root=tmp_path)
    entry.put_pickle("system.pickle", system)
    loaded = entry.get_pickle("system.pickle")
    assert loaded is not None and loaded is not system
    assert loaded.rhs == system.rhs and dict(loaded.observables) == dict(system.observables)
    assert sp.srepr(loaded.rhs) == sp.srepr(system.rhs)
    assert loaded.key == system.key
    loaded.__dict__.pop("key")  # the stored key, recomputed from the loaded expressions
    assert loaded.key == system.key
