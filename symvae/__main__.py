"""``python -m symvae``: Ctrl-C at any point, imports included, ends with one line and exit code 130."""
import os
import sys

try:
    from .cli import console
except KeyboardInterrupt:  # before the CLI's own handler exists
    sys.stderr.write("symvae: interrupted\n")
    sys.stderr.flush()
    os._exit(130)

console()
