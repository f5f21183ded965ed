"""Command-line interface (``symvae ...``)."""
from ._main import build_parser as build_parser
from ._main import main as main
from ._main import console as console
