"""``sipdo report RUN_ID -o FILE.html``: write a run's self-contained HTML report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sipdo.cli.common import DbOption, clean_errors, err_console, store_url
from sipdo.errors import ConfigurationError, StoreError
from sipdo.retry import RetryPolicy

# A report only reads: wait out a passing fault briefly, then say the store is down.
READ_RETRY = RetryPolicy(retry_for_s=10.0, backoff_s=0.5, max_backoff_s=2.0)


def existing_sqlite(url: str) -> None:
    """A SQLite store named by ``url`` must already exist: opening it would create an
    empty one, and a report of a store that never was is a mistyped path."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"not a database URL: {url!r} ({exc})") from exc
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):
        return
    if not Path(database).expanduser().is_file():
        raise StoreError(f"no run store at {database} (give the store with --db URL)")


def default_output(run_id: str) -> Path:
    return Path(f"sipdo-report-{re.sub(r'[^A-Za-z0-9._-]+', '_', run_id)}.html")


@clean_errors
def report(
    run_id: Annotated[str, typer.Argument(help="The run to report on.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="HTML file to write (default: sipdo-report-RUN_ID.html).",
            show_default=False,
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="The run's checkpoint file, for sandbox time and the difficulty asked "
            "(default: next to a SQLite store, else $SIPDO_HOME/checkpoints.db).",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Write a run's report: one self-contained HTML page with plots (no network needed)."""
    from sipdo.cli.run import checkpoint_path
    from sipdo.report import write_report
    from sipdo.store import RunStore

    url = store_url(db)
    existing_sqlite(url)
    target = output if output is not None else default_output(run_id)
    ckpt = checkpoint if checkpoint is not None else checkpoint_path(url)
    with RunStore(url, retry=READ_RETRY) as store:
        data = write_report(store, run_id, target, checkpoint=ckpt)
    generated = [t for t in data.tasks if t.status != "seed"]
    accepted = sum(1 for t in generated if t.status == "accepted")
    if data.heldout:
        first, last = data.heldout[0], data.heldout[-1]
        heldout = f"held-out pass@1 {first.score:.3f} -> {last.score:.3f}"
    else:
        heldout = "no held-out evaluation recorded"
    size_mb = target.stat().st_size / 1e6
    err_console.print(
        f"wrote {target} ({size_mb:.1f} MB): {len(data.versions)} prompt versions, "
        f"{accepted} of {len(generated)} generated tasks accepted, {heldout}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
