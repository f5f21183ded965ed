"""``symvae cache info|clear``: where generated code and derivations are cached, and emptying that cache."""
from __future__ import annotations

import argparse
import sys

from ._common import print_json

_HELP = ("Derivations and generated (numba-compiled) modules are cached on disk, keyed by a hash of the model. The "
         "location is $SYMVAE_CACHE if set, else $XDG_CACHE_HOME/symvae, else ~/.cache/symvae. Clearing it is always "
         "safe: entries are rebuilt on demand (the next run of each model is slower).")


def register(sub) -> None:
    p = sub.add_parser("cache", help="show or clear the on-disk cache of derivations and compiled code",
                       description=_HELP)
    p.add_argument("action", choices=("info", "clear"), help="info: location, entries, size; clear: delete the entries")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._cache import cache_info, clear_cache

    if args.action == "clear":
        before = cache_info()
        removed = clear_cache()
        out = {**cache_info(), "removed": removed, "bytes_freed": before["bytes"]}
    else:
        out = cache_info()
    if args.json:
        print_json(out)
    else:
        sys.stdout.write(f"cache: {out['path']}{'' if out['exists'] else ' (does not exist yet)'}\n"
                         f"entries: {out['entries']} ({out['bytes'] / 2 ** 20:.1f} MiB)\n")
        if args.action == "clear":
            sys.stdout.write(f"removed {out['removed']} entries ({out['bytes_freed'] / 2 ** 20:.1f} MiB)\n")
    return 0
