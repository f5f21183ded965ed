"""``python -m symvae``: Ctrl-C at any point, imports included, ends with one line and exit code 130."""
import sys


def _entry() -> int:
    try:
        from .cli import main

        return main()
    except KeyboardInterrupt:
        sys.stderr.write("symvae: interrupted\n")
        return 130


sys.exit(_entry())
