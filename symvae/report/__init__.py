"""Reports: export of derived equations (Markdown/LaTeX/Python/JSON) and the ``derivations/`` folder."""
from ._export import FORMATS as FORMATS
from ._export import derivation_files as derivation_files
from ._export import render as render
from ._export import to_json as to_json
from ._export import to_latex as to_latex
from ._export import to_markdown as to_markdown
from ._export import to_python as to_python
from ._export import write_derivations as write_derivations
