"""``python -m sipdo.plugins.models [NAME ...]``: install and join local models.

Prints ``name<TAB>path`` per model; with no names, every catalogued model.
Exit status 1 with the reason on stderr when a model cannot be had.
"""

from __future__ import annotations

import sys

from sipdo.errors import ModelUnavailableError, UnknownPluginError
from sipdo.plugins.models.catalog import LOCAL_MODELS, ensure_local_model


def main(argv: list[str] | None = None) -> int:
    """Install and join each named model (all by default)."""
    names = (argv if argv is not None else sys.argv[1:]) or list(LOCAL_MODELS)
    for name in names:
        try:
            path = ensure_local_model(name, install=True)
        except (ModelUnavailableError, UnknownPluginError) as exc:
            print(f"sipdo: {exc}", file=sys.stderr)
            return 1
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
