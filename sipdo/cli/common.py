"""What every command shares: consoles, the ``--db`` option, and error reporting."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from sipdo.errors import RunStoppedError, SipdoError

P = ParamSpec("P")
R = TypeVar("R")

# A run stopped by a fault outside it (model server, store, sandbox engine) and resumable:
# sysexits' "temporary failure, try again", so scripts can tell it from a bad invocation.
EX_TEMPFAIL = 75

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


def clean_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """sipdo errors -> ``error: ...`` exit 1 (a resumable ``RunStoppedError``: 75); other
    exceptions -> one line, exit 2."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except RunStoppedError as exc:
            raise fail(str(exc), EX_TEMPFAIL) from exc
        except SipdoError as exc:
            raise fail(str(exc) or type(exc).__name__) from exc
        except KeyboardInterrupt as exc:
            err_console.print("interrupted")
            raise typer.Exit(130) from exc
        except Exception as exc:
            if os.environ.get("SIPDO_DEBUG"):
                raise
            raise fail(
                f"unexpected {type(exc).__name__}: {exc} (SIPDO_DEBUG=1 shows the traceback)", 2
            ) from exc

    return wrapper


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
