"""Loaders of real data: IDX files (plain and gz) and .npy/.npz written here, the shipped digits, bad files."""
import gzip
import struct

import numpy as np
import pytest

from helpers import run_cli
from symvae.data import load_dataset, load_idx, load_array, prepare
from symvae.errors import InvalidInputError


def _idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    dt = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(dt).tobytes()


@pytest.fixture
def images():
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, size=(7, 4, 5)).astype(np.uint8)


def test_idx_plain_and_gz_give_the_images_row_by_row(tmp_path, images):
    plain = tmp_path / "t10k-images-idx3-ubyte"
    plain.write_bytes(_idx_bytes(images))
    gz = tmp_path / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(_idx_bytes(images)))
    for path in (plain, gz):
        X = load_idx(path)
        assert X.shape == (7, 20) and X.dtype == np.float64
        # pixel (i, r, c) of image i is column 5 r + c
        assert X[2, 5 * 3 + 1] == images[2, 3, 1]
        np.testing.assert_array_equal(X, images.reshape(7, 20))


def test_idx_big_endian_types(tmp_path):
    arr = np.array([[1.5, -2.25], [3.0, 1e3], [0.0, 7.0]])
    p = tmp_path / "f.idx"
    p.write_bytes(_idx_bytes(arr, 0x0D))
    np.testing.assert_array_equal(load_idx(p), arr)
    q = tmp_path / "s.idx"
    q.write_bytes(_idx_bytes(np.array([[-300, 2], [5, 1000]]), 0x0B))
    np.testing.assert_array_equal(load_idx(q), [[-300, 2], [5, 1000]])


def test_npy_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(9, 6))
    np.save(tmp_path / "x.npy", X)
    np.testing.assert_array_equal(load_array(tmp_path / "x.npy"), X)
    np.savez(tmp_path / "one.npz", whatever=X)
    np.testing.assert_array_equal(load_array(tmp_path / "one.npz"), X)
    np.savez(tmp_path / "two.npz", X=X, y=np.arange(9))
    np.testing.assert_array_equal(load_array(tmp_path / "two.npz"), X)
    np.testing.assert_array_equal(load_dataset(f"{tmp_path / 'two.npz'}:X").X.shape, (9, 6))
    np.save(tmp_path / "img.npy", rng.integers(0, 9, size=(5, 3, 3)).astype(np.int16))
    assert load_array(tmp_path / "img.npy").shape == (5, 9)


def test_prepare_centres_scales_and_drops_constant_coordinates():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 5)) * [1, 2, 3, 4, 5] + 10
    X = np.concatenate([X, np.full((200, 1), 4.0)], axis=1)
    d = prepare(X)
    assert d.N == 5 and d.raw_N == 6 and list(d.kept) == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(d.X.mean(axis=0), 0, atol=1e-12)
    assert np.trace(d.X.T @ d.X / d.n) / d.N == pytest.approx(1.0, rel=1e-12)
    # the scale is the root mean per-coordinate variance of the raw centred data (computed independently here)
    assert d.scale == pytest.approx(np.sqrt(np.mean(np.var(X[:, :5], axis=0))), rel=1e-12)


def test_digits_ship_with_scikit_learn():
    d = load_dataset("digits")
    # 1797 8x8 images; pixels 0, 32 and 39 are blank in every image of this dataset
    assert (d.n, d.raw_N) == (1797, 64)
    assert d.N == 61 and not {0, 32, 39} & set(d.kept.tolist())
    assert load_dataset("digits", n=300, seed=1).n == 300


def _bad_files(tmp_path, images):
    good = _idx_bytes(images)
    files = {
        "magic": b"\x08\x03" + good[2:],
        "type": bytes([0, 0, 0x07, 3]) + good[4:],
        "truncated": good[:-3],
        "trailing": good + b"\0",
        "labels": _idx_bytes(np.arange(5, dtype=np.uint8)),
        "huge": bytes([0, 0, 8, 3]) + struct.pack(">3I", 4_000_000_000, 100, 100),
        "gz-broken": gzip.compress(good)[:-10],
        "empty": b"",
    }
    out = {}
    for name, data in files.items():
        p = tmp_path / f"{name}-idx3-ubyte"
        p.write_bytes(data)
        out[name] = p
    np.save(tmp_path / "str.npy", np.array([["a", "b"], ["c", "d"]]))
    out["npy-strings"] = tmp_path / "str.npy"
    np.save(tmp_path / "obj.npy", np.array([[1, None], [2, 3]], dtype=object), allow_pickle=True)
    out["npy-object"] = tmp_path / "obj.npy"
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan], [2.0, 3.0], [1.0, 1.0]]))
    out["npy-nan"] = tmp_path / "nan.npy"
    np.save(tmp_path / "one.npy", np.ones((1, 4)))
    out["npy-n1"] = tmp_path / "one.npy"
    np.savez(tmp_path / "two.npz", a=np.ones((3, 3)), b=np.ones((3, 3)))
    out["npz-ambiguous"] = tmp_path / "two.npz"
    (tmp_path / "fake.npy").write_bytes(b"not numpy at all")
    out["npy-garbage"] = tmp_path / "fake.npy"
    out["missing"] = tmp_path / "nowhere.npy"
    return out


def test_bad_files_raise_invalid_input(tmp_path, images):
    for name, path in _bad_files(tmp_path, images).items():
        with pytest.raises(InvalidInputError):
            load_dataset(str(path))


def test_bad_files_exit_2_with_one_line(tmp_path, images, capsys):
    for name, path in _bad_files(tmp_path, images).items():
        code, out, err = run_cli(capsys, "fit-data", "--dataset", path, "--json")
        assert code == 2, name
        assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (name, err)
    code, _, err = run_cli(capsys, "fit-data", "--dataset", "digits", "--n", "1", "--json")
    assert code == 2 and len(err.strip().splitlines()) == 1
