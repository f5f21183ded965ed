"""Reports: export of derived equations (Markdown/LaTeX/Python/JSON) and the ``derivations/`` folder.

Names are imported on first use (PEP 562), so the command line can offer ``FORMATS`` without importing SymPy.
"""
from .._lazy import lazy_exports

#: The export formats of ``render`` (kept here, free of SymPy, for the command line's choices).
FORMATS = ("markdown", "latex", "python", "json")

_LAZY = {name: "._export" for name in ("derivation_files", "render", "to_json", "to_latex", "to_markdown",
                                       "to_python", "write_derivations")}

__all__ = ["FORMATS", *sorted(_LAZY)]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
