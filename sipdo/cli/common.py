"""What the commands share: consoles, the options several commands take, and error reporting."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

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

SANDBOX_KINDS = ("auto", "docker", "process")

SandboxOption = Annotated[str, typer.Option(help="auto, docker or process.")]

JsonlOutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="JSONL file (default: stdout).")
]


def model_option(flag: str, env: str | None, role: str, help: str | None = None) -> Any:
    """The ``typer.Option`` of a model role's spec (read from ``env`` when given and not passed)."""
    return typer.Option(
        flag,
        envvar=env,
        show_default=False,
        help=help
        or (
            "Learner model: provider:name (openai:gpt-4o-mini), openai:NAME@BASE_URL, "
            "local:NAME or a .gguf path. Default: the built-in default."
            if role == "learner"
            else f"Model of the {role} (same forms). "
            "Default: --model if given, else the role's default."
        ),
    )


def check_sandbox(kind: str | None) -> None:
    """A ``--sandbox`` value other than auto, docker or process is a clear error."""
    from sipdo.errors import ConfigurationError

    if kind is not None and kind not in SANDBOX_KINDS:
        raise ConfigurationError(f"unknown sandbox {kind!r}; available: {', '.join(SANDBOX_KINDS)}")


def write_rows(rows: Iterable[dict[str, Any]], output: Path | None, what: str) -> int:
    """Write ``rows`` as JSONL to ``output`` (stdout if None); say ``wrote N what to FILE``."""
    from sipdo.cli.inspect import write_jsonl

    count = write_jsonl(rows, output)
    if output is not None:
        err_console.print(f"wrote {count} {what} to {output}")
    return count


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
