"""Loading real data: the handwritten digits that ship with scikit-learn, MNIST-style IDX files and ``.npy``/``.npz``
matrices given by path. Nothing is downloaded.

Every loader returns the raw samples as rows (n x N, float64); ``prepare`` turns them into the theory's units:
constant coordinates dropped, the mean removed, and one overall scale so that the mean per-coordinate variance is 1.
With that convention the data model x in R^N with covariance rho W*W*^T/N + eta I (W*^T W*/N = I) reads directly:
eta and rho are in units of the mean per-coordinate variance (tr S / N = 1, so eta + sum_k rho_k / N ~ 1).

Work and memory are bounded before any data is read: a header (IDX or .npy) announcing more than ``MAX_ENTRIES``
numbers or more than ``MAX_FEATURES`` coordinates is refused.
"""
from __future__ import annotations

import dataclasses
import gzip
import os
import pathlib
import struct
import zipfile
import zlib

import numpy as np

from ..errors import InvalidInputError

__all__ = ["RealData", "load_dataset", "load_idx", "load_array", "load_digits", "prepare", "subsample",
           "MAX_ENTRIES", "MAX_FEATURES"]

#: Largest number of values a loader accepts (60000 x 784 MNIST is 4.7e7): 0.8 GB as float64, ~3 GB at peak.
MAX_ENTRIES = 100_000_000
#: Largest number of coordinates N (the N x N covariance and its eigendecomposition must fit).
MAX_FEATURES = 4096

# IDX type codes (LeCun's format): code -> (big-endian numpy dtype, bytes per value)
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclasses.dataclass(frozen=True, eq=False)
class RealData:
    """Samples of a real dataset in the theory's units (see ``prepare``).

    Attributes:
        X: centred, scaled samples as rows (n x N). name: where they came from. scale: the factor the centred raw
        data were divided by (sqrt of the mean per-coordinate variance). mean: the raw mean (length N, kept
        coordinates). kept: indices of the raw coordinates kept (constant ones dropped). raw_N: coordinates before.
    """

    X: np.ndarray
    name: str
    scale: float
    mean: np.ndarray
    kept: np.ndarray
    raw_N: int

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def N(self) -> int:
        return self.X.shape[1]

    @property
    def alpha(self) -> float:
        return self.n / self.N


def _check_shape(shape, what: str) -> tuple[int, int]:
    """(n, N) of an array of this shape (2-D, or images n x h x w flattened), bounded."""
    if len(shape) < 2:
        raise InvalidInputError(f"{what}: a {len(shape)}-dimensional array is not a sample matrix (labels?); "
                                "need n x N or n x height x width")
    n = int(shape[0])
    N = int(np.prod([int(s) for s in shape[1:]], dtype=object))
    if n < 2:
        raise InvalidInputError(f"{what}: n = {n} samples; need at least 2")
    if N < 2:
        raise InvalidInputError(f"{what}: N = {N} coordinates; need at least 2")
    if N > MAX_FEATURES:
        raise InvalidInputError(f"{what}: N = {N} coordinates exceeds the limit {MAX_FEATURES}")
    if n * N > MAX_ENTRIES:
        raise InvalidInputError(f"{what}: {n} x {N} values exceed the limit {MAX_ENTRIES}")
    return n, N


def _finite(X: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(X)):
        raise InvalidInputError(f"{what}: contains non-finite values")
    return X


def load_idx(path) -> np.ndarray:
    """An IDX file (MNIST / FashionMNIST ``*-images-idx3-ubyte``, optionally ``.gz``) as an n x N float64 array.

    Raises:
        InvalidInputError: unreadable file, bad magic number, unknown type code, a header beyond the limits,
            truncated or over-long data, or a 1-dimensional (label) file.
    """
    path = pathlib.Path(path)
    what = str(path)
    try:
        with open(path, "rb") as probe:
            gz = probe.read(2) == b"\x1f\x8b"
        opener = gzip.open if gz else open
        with opener(path, "rb") as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise InvalidInputError(f"{what}: not an IDX file (wrong magic number)")
            code, ndim = head[2], head[3]
            if code not in _IDX_TYPES:
                raise InvalidInputError(f"{what}: unknown IDX type code 0x{code:02x}")
            if ndim < 1 or ndim > 8:
                raise InvalidInputError(f"{what}: IDX header claims {ndim} dimensions")
            dims_raw = fh.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise InvalidInputError(f"{what}: truncated IDX header")
            dims = struct.unpack(f">{ndim}I", dims_raw)
            n, N = _check_shape(dims, what)
            dtype = np.dtype(_IDX_TYPES[code])
            want = n * N * dtype.itemsize
            body = fh.read(want)
            if len(body) < want:
                raise InvalidInputError(f"{what}: truncated IDX data ({len(body)} of {want} bytes)")
            if fh.read(1):
                raise InvalidInputError(f"{what}: more data than the IDX header announces")
    except InvalidInputError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidInputError(f"{what}: cannot read ({exc.__class__.__name__}: {exc})") from None
    X = np.frombuffer(body, dtype=dtype).reshape(n, N).astype(np.float64)
    return _finite(X, what)


def _npy_header(fh, what: str):
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidInputError(f"{what}: not a .npy array ({exc})") from None
    return shape, dtype


def _numeric(dtype, what: str) -> None:
    if dtype.hasobject or not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)) \
            or np.issubdtype(dtype, np.complexfloating):
        raise InvalidInputError(f"{what}: dtype {dtype} is not real-valued numeric")


def load_array(path, key: str | None = None) -> np.ndarray:
    """A ``.npy`` array or one array of a ``.npz`` archive (``key``, else the only array, else ``X``/``data``) as
    an n x N float64 array (images n x h x w are flattened). Object arrays are never unpickled.

    Raises:
        InvalidInputError: unreadable file, non-numeric or complex dtype, wrong shape, sizes beyond the limits,
            non-finite values, or an ambiguous ``.npz``.
    """
    path = pathlib.Path(path)
    what = str(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [m[:-4] for m in zf.namelist() if m.endswith(".npy")]
                if key is None:
                    if len(names) == 1:
                        key = names[0]
                    else:
                        key = next((k for k in ("X", "x", "data") if k in names), None)
                        if key is None:
                            raise InvalidInputError(f"{what}: holds {', '.join(names) or 'no arrays'}; "
                                                    "say which with PATH:KEY")
                if key not in names:
                    raise InvalidInputError(f"{what}: no array named {key!r} (has {', '.join(names)})")
                what = f"{path}:{key}"
                with zf.open(key + ".npy") as fh:
                    shape, dtype = _npy_header(fh, what)
                    _numeric(dtype, what)
                    _check_shape(shape, what)
                with np.load(path, allow_pickle=False) as archive:
                    X = np.asarray(archive[key])
        else:
            with open(path, "rb") as fh:
                shape, dtype = _npy_header(fh, what)
            _numeric(dtype, what)
            _check_shape(shape, what)
            X = np.load(path, allow_pickle=False, mmap_mode="r")
    except InvalidInputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InvalidInputError(f"{what}: cannot read ({exc.__class__.__name__}: {exc})") from None
    n, N = _check_shape(X.shape, what)
    return _finite(np.asarray(X, dtype=np.float64).reshape(n, N), what)


def load_digits() -> np.ndarray:
    """The 1797 x 64 handwritten digits (8 x 8 images, values 0..16) that ship with scikit-learn.

    Raises:
        InvalidInputError: scikit-learn is not installed (``pip install symvae[real]``).
    """
    try:
        from sklearn.datasets import load_digits as _sk_digits
    except ImportError:
        raise InvalidInputError("the digits dataset needs scikit-learn: pip install 'symvae[real]'") from None
    return np.asarray(_sk_digits().data, dtype=np.float64)


def _read(spec: str) -> np.ndarray:
    if spec == "digits":
        return load_digits()
    path, key = spec, None
    if not os.path.exists(path) and ":" in spec:
        path, _, key = spec.rpartition(":")
    p = pathlib.Path(path)
    if not p.exists():
        raise InvalidInputError(f"dataset {spec!r}: no such file (known names: digits)")
    if p.is_dir():
        raise InvalidInputError(f"dataset {spec!r} is a folder; give the images file itself")
    name = p.name.lower()
    if name.endswith((".npy", ".npz")):
        return load_array(p, key)
    if key is not None:
        raise InvalidInputError(f"dataset {spec!r}: PATH:KEY only applies to .npz files")
    return load_idx(p)


def prepare(X: np.ndarray, name: str = "data") -> RealData:
    """Samples in the theory's units: drop constant coordinates, remove the mean, divide by one overall scale so
    that the mean per-coordinate variance tr(S)/N is 1 (module docstring).

    Raises:
        InvalidInputError: fewer than 2 samples or fewer than 2 non-constant coordinates.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2:
        raise InvalidInputError(f"{name}: need an n x N matrix with n >= 2, got shape {X.shape}")
    spread = X.max(axis=0) - X.min(axis=0)
    kept = np.flatnonzero(spread > 0)
    if kept.size < 2:
        raise InvalidInputError(f"{name}: fewer than 2 non-constant coordinates")
    Y = X[:, kept]
    mean = Y.mean(axis=0)
    Y = Y - mean
    scale = float(np.sqrt(np.sum(Y * Y) / Y.size))
    return RealData(X=Y / scale, name=name, scale=scale, mean=mean, kept=kept, raw_N=X.shape[1])


def subsample(X: np.ndarray, n: int, rng) -> np.ndarray:
    """n rows drawn without replacement (all rows if n >= len(X))."""
    if n >= X.shape[0]:
        return X
    return X[np.sort(rng.choice(X.shape[0], size=n, replace=False))]


def load_dataset(spec: str, *, n: int | None = None, seed: int = 0) -> RealData:
    """A dataset by name or path, in the theory's units.

    Arguments:
        spec: ``"digits"`` (scikit-learn's 1797 x 64 digits), a path to an IDX file (``*-ubyte`` or
            ``*-ubyte.gz``), or to a ``.npy`` / ``.npz`` (``PATH:KEY`` picks an array of an archive).

    Other arguments:
        n: use n samples drawn without replacement (seeded by ``seed``) instead of all of them.

    Returns:
        A ``RealData`` (``prepare`` applied after subsampling).

    Raises:
        InvalidInputError: unknown name, unreadable or malformed file, n < 2 or more than the file holds.
    """
    raw = _read(str(spec))
    if n is not None:
        if not isinstance(n, (int, np.integer)) or n < 2:
            raise InvalidInputError(f"--n must be an integer >= 2, got {n!r}")
        if n > raw.shape[0]:
            raise InvalidInputError(f"--n {n} exceeds the {raw.shape[0]} samples of {spec}")
        raw = subsample(raw, int(n), np.random.default_rng(seed))
    return prepare(raw, name="digits" if spec == "digits" else pathlib.Path(str(spec)).name)
