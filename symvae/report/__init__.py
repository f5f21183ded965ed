"""Reports: export of derived equations (Markdown/LaTeX/Python/JSON) and the ``derivations/`` folder.

Names are imported on first use (PEP 562), so the command line can offer ``FORMATS`` without importing SymPy.
"""
import importlib

#: The export formats of ``render`` (kept here, free of SymPy, for the command line's choices).
FORMATS = ("markdown", "latex", "python", "json")

_LAZY = {name: "._export" for name in ("derivation_files", "render", "to_json", "to_latex", "to_markdown",
                                       "to_python", "write_derivations")}

__all__ = ["FORMATS", *sorted(_LAZY)]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
