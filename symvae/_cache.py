"""On-disk cache of derivations and generated modules, keyed by content hash.

Layout: ``<cache>/<key>/`` holds the artefacts and ``manifest.json`` with the SHA-256 of each. Writes are atomic
(temporary file + ``os.replace``); an entry whose files do not match its manifest is treated as absent and rebuilt.
The cache root is ``$SYMVAE_CACHE`` if set, else ``$XDG_CACHE_HOME/symvae``, else ``~/.cache/symvae``. Deleting it is
always safe (``symvae cache clear``): everything in it is rebuilt on demand.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import pickle
import re
import shutil
import sys
import tempfile

__all__ = ["cache_root", "CacheEntry", "content_key", "cache_entries", "cache_info", "clear_cache"]

#: Bump when the derivation or the generated code changes meaning, so old entries are not reused.
FORMAT_VERSION = "3"


def cache_root() -> pathlib.Path:
    """``$SYMVAE_CACHE``, else ``$XDG_CACHE_HOME/symvae``, else ``~/.cache/symvae`` (empty variables are unset)."""
    root = os.environ.get("SYMVAE_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        # the XDG spec: a relative XDG_CACHE_HOME is invalid and must be ignored
        base = xdg if xdg and os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "symvae")
    return pathlib.Path(root)


#: Entry folders are named by ``content_key``: 24 hex digits. Only those are listed or deleted, so that a cache root
#: pointed at a folder holding other files never loses them.
_ENTRY_NAME = re.compile(r"^[0-9a-f]{24}$")


def cache_entries(root: pathlib.Path | None = None) -> list[pathlib.Path]:
    """The entry folders under the cache root (none if it does not exist)."""
    root = cache_root() if root is None else pathlib.Path(root)
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and _ENTRY_NAME.match(p.name))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _size(path: pathlib.Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def cache_info(root: pathlib.Path | None = None) -> dict:
    """Location, existence, number of entries and their total size in bytes."""
    root = cache_root() if root is None else pathlib.Path(root)
    entries = cache_entries(root)
    return {"path": str(root), "exists": root.is_dir(), "entries": len(entries),
            "bytes": sum(_size(e) for e in entries), "format_version": FORMAT_VERSION}


def clear_cache(root: pathlib.Path | None = None) -> int:
    """Delete every entry folder under the cache root (and nothing else); the number deleted."""
    entries = cache_entries(root)
    for entry in entries:
        # rename first, so a concurrent reader never sees a half-deleted entry (it reads as absent)
        doomed = entry.with_name(f".{entry.name}.deleting-{os.getpid()}")
        try:
            os.replace(entry, doomed)
        except OSError:
            continue
        shutil.rmtree(doomed, ignore_errors=True)
    return len(entries)


def content_key(*parts: str) -> str:
    h = hashlib.sha256(FORMAT_VERSION.encode())
    for p in parts:
        h.update(b"\0" + p.encode())
    return h.hexdigest()[:24]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _atomic_write(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class CacheEntry:
    """One cache directory; ``get``/``put`` artefacts by file name, verified against the manifest."""

    def __init__(self, key: str, root: pathlib.Path | None = None):
        self.key = key
        self.dir = (root or cache_root()) / key

    def _manifest(self) -> dict[str, str]:
        try:
            return json.loads((self.dir / "manifest.json").read_text())
        except (OSError, ValueError):
            return {}

    def read_bytes(self, name: str) -> bytes | None:
        """The artefact's bytes if present and matching the manifest, else None (a corrupt entry reads as absent)."""
        expected = self._manifest().get(name)
        if expected is None:
            return None
        try:
            data = (self.dir / name).read_bytes()
        except OSError:
            return None
        return data if _sha(data) == expected else None

    def write_bytes(self, name: str, data: bytes) -> pathlib.Path:
        path = self.dir / name
        _atomic_write(path, data)
        manifest = self._manifest()
        manifest[name] = _sha(data)
        _atomic_write(self.dir / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode())
        return path

    def get_pickle(self, name: str):
        data = self.read_bytes(name)
        if data is None:
            return None
        try:
            obj = pickle.loads(data)
        except Exception:  # a corrupt pickle is a cache miss
            return None
        if b"sympy.core" in data and b"_from_args" not in data:  # written before _Pickler: rewrite it once
            try:
                self.put_pickle(name, obj)
            except (OSError, pickle.PicklingError):  # a read-only cache only costs speed
                pass
        return obj

    def put_pickle(self, name: str, obj) -> None:
        buffer = io.BytesIO()
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
        self.write_bytes(name, buffer.getvalue())


def _canonical_classes() -> tuple:
    """SymPy's ``Add`` and ``Mul`` if SymPy is loaded (nothing else can be in a pickle of SymPy objects)."""
    if "sympy" not in sys.modules:
        return ()
    from sympy import Add, Mul

    return (Add, Mul)


def _from_args(cls, args):
    """Rebuild an ``Add``/``Mul`` pickled by ``_Pickler`` from its stored (already canonical) arguments."""
    return cls._from_args(args)


class _Pickler(pickle.Pickler):
    """A pickler whose SymPy sums and products unpickle without being evaluated again.

    SymPy pickles an expression as its class and arguments, and unpickling calls the class on them: every ``Add`` and
    ``Mul`` is flattened, sorted and simplified afresh (``Mul.flatten``), which made loading a large derivation cost
    seconds (~2 s of a 2.9 s warm ``symvae dynamics`` at (M, M*) = (5, 5)). The stored arguments are those of an
    already evaluated expression, in canonical order, so the object is rebuilt from them directly (``_from_args``, as
    ``Add``/``Mul`` themselves do at the end of their evaluation): the same arguments, hence an equal expression with
    the same hash and ``srepr``. Exact ``Add``/``Mul`` only (subclasses keep SymPy's own reduction)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._canonical = _canonical_classes()

    def reducer_override(self, obj):
        cls = type(obj)
        if cls in self._canonical:
            return _from_args, (cls, obj.args)
        return NotImplemented
