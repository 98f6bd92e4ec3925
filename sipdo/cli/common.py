"""What every command shares: consoles, the ``--db`` option, and error reporting."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from sipdo.errors import SipdoError

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="SIPDO_DB",
        help="Run store: any SQLAlchemy URL. Default: sqlite:///$SIPDO_HOME/runs.db "
        "(SIPDO_HOME defaults to ~/.sipdo).",
        show_default=False,
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` to stderr and return the Exit to raise."""
    err_console.print(
        Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True
    )
    return typer.Exit(code)


@contextmanager
def reported() -> Iterator[None]:
    """Turn sipdo's own errors into one clear line on stderr and exit status 1."""
    try:
        yield
    except SipdoError as exc:
        raise fail(str(exc) or type(exc).__name__) from exc


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``, or a clear error naming ``what``."""
    from sipdo.errors import ConfigurationError

    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc}") from exc


def store_url(db: str | None) -> str:
    from sipdo.store import default_url

    return db or os.environ.get("SIPDO_DB") or default_url()
