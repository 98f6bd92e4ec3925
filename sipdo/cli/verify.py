"""``sipdo verify``: verify a dataset of tasks (or of samples) into a verdict JSONL.

A thin wrapper over ``sipdo.verifiers.dataset.verify_dataset``: option
parsing, a progress bar on stderr (rows, rate, ETA), the summary table, and
``--report`` (``sipdo.cli.verify_report``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from sipdo.cli.common import SandboxOption, clean_errors, console, err_console
from sipdo.errors import ConfigurationError


class RateColumn(ProgressColumn):
    """Rows per second since the start."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        done = task.completed - task.fields.get("resumed", 0)
        rate = done / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:.2f} rows/s", style="progress.data.speed")


def parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(k) for k in text.split(",") if k.strip()})
    except ValueError as exc:
        raise ConfigurationError(f"--k wants comma-separated integers, got {text!r}") from exc
    if not ks or ks[0] < 1:
        raise ConfigurationError(f"--k wants integers >= 1, got {text!r}")
    return ks


def summary_table(summary: dict[str, Any]) -> Table:
    """Accepted / rejected by reason, mutation scores, pass@k."""
    table = Table(title="sipdo verify", show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("rows", justify="right")
    table.add_column("share", justify="right")
    rows = summary["rows"] or 1
    for status, n in sorted(summary["statuses"].items(), key=lambda kv: -kv[1]):
        table.add_row(status, str(n), f"{n / rows:.1%}")
    for reason, n in summary["rejected_by"].items():
        table.add_row(f"  not passed: {reason}", str(n), f"{n / rows:.1%}")
    hist = {k: v for k, v in summary["mutation_score_histogram"].items() if v}
    if hist:
        table.add_row("mutation score", " ".join(f"{k}:{v}" for k, v in hist.items()), "")
    for key, value in summary.items():
        if key.startswith("pass@"):
            table.add_row(key, f"{value:.4f}", f"over {summary['tasks_graded']} tasks")
    table.add_row("total", str(summary["rows"]), f"{summary['passed']} passed")
    if summary.get("unreadable_task_rows"):
        table.add_row("unreadable task rows", str(len(summary["unreadable_task_rows"])), "")
    return table


@clean_errors
def verify(
    tasks: Annotated[
        Path, typer.Argument(help="Tasks file: JSONL or Parquet (sipdo, HumanEval or MBPP rows).")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Verdicts, JSONL: one row per input row.")
    ],
    solutions: Annotated[
        Path | None,
        typer.Option(
            help="Samples to grade ({task_id, solution} or HumanEval's {task_id, completion}); "
            "without it, the tasks themselves are verified.",
            show_default=False,
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(min=1, help="Sandbox workers (default: the cores).", show_default=False),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="local, or ray (pip install 'sipdo\\[ray]').")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster address (default: RAY_ADDRESS, else a local Ray).", show_default=False
        ),
    ] = None,
    sandbox: SandboxOption = "auto",
    fmt: Annotated[
        str, typer.Option("--format", help="Row format: auto, sipdo, humaneval or mbpp.")
    ] = "auto",
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="FIELD=PATH: read a task field from a dotted path of the row (repeatable).",
            show_default=False,
        ),
    ] = None,
    solutions_map: Annotated[
        list[str] | None,
        typer.Option(
            help="FIELD=PATH for the sample rows (task_id, solution, completion).",
            show_default=False,
        ),
    ] = None,
    fix_suggestions: Annotated[
        bool,
        typer.Option(
            help="For rejected tasks: advice per failing check, and tests (verified) that kill "
            "the surviving mutants. Off by default."
        ),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(help="Keep the verdicts already in OUTPUT (by content id); verify the rest."),
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing OUTPUT.")] = False,
    retries: Annotated[
        int, typer.Option(min=0, help="Retries of a row hit by a sandbox failure.")
    ] = 2,
    k: Annotated[str, typer.Option("--k", help="pass@k values (solutions mode).")] = "1,10,100",
    report: Annotated[
        Path | None,
        typer.Option(help="Also write an HTML report (Plotly, offline).", show_default=False),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
    reference_cache: Annotated[
        Path | None,
        typer.Option(
            help="SQLite file of the tasks' reference runs, kept across runs (solutions mode): "
            "grading another samples file on the same tasks skips them.",
            show_default=False,
        ),
    ] = None,
    tests_only: Annotated[
        bool,
        typer.Option(
            help="Solutions mode: grade on the tasks' own tests alone (the check a plain "
            "harness makes, sandboxed; no generated inputs), one sandbox run per row."
        ),
    ] = False,
) -> None:
    """Verify a dataset: are the tasks sound (default), or do the samples pass (--solutions)?"""
    from sipdo.verifiers.datafiles import count_rows
    from sipdo.verifiers.dataset import verify_dataset
    from sipdo.verifiers.formats import parse_mapping

    if engine not in ("local", "ray"):
        raise ConfigurationError(f"unknown engine {engine!r}; available: local, ray")
    if resume and overwrite:
        raise ConfigurationError("give --resume or --overwrite, not both")
    if output.exists() and output.stat().st_size and not (resume or overwrite):
        raise ConfigurationError(f"{output} exists: --resume continues it, --overwrite replaces it")
    ks = parse_ks(k)
    if tests_only and solutions is None:
        raise ConfigurationError(
            "--tests-only grades samples (--solutions); a task's soundness needs generated inputs"
        )
    config = None
    if tests_only:
        from sipdo.verifiers.config import VerifierConfig

        config = VerifierConfig(n_standard=0, n_extended=0)
    source = solutions or tasks
    total = count_rows(source) if source.is_file() else None
    with Progress(
        TextColumn("[bold]verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
        disable=not progress,
        transient=False,
    ) as bar:
        task_bar = bar.add_task("verify", total=total, resumed=0)

        def tick(record: dict[str, Any], resumed: bool) -> None:
            if resumed:  # kept from the earlier run: not part of this run's rate
                bar.update(task_bar, resumed=bar.tasks[task_bar].fields["resumed"] + 1)
            bar.advance(task_bar)

        summary = verify_dataset(
            tasks,
            output=output,
            solutions=solutions,
            jobs=jobs,
            sandbox=sandbox,
            fmt=fmt,
            mapping=parse_mapping(map_ or []),
            solutions_mapping=parse_mapping(solutions_map or []),
            fix_suggestions=fix_suggestions,
            resume=resume,
            retries=retries,
            ks=ks,
            engine=engine,
            ray_address=ray_address,
            progress=tick,
            reference_cache=reference_cache,
            config=config,
        )
    data = summary.as_dict()
    console.print(summary_table(data))
    if summary.unreadable_tasks:
        lost = summary.unreadable_tasks
        more = f" (and {len(lost) - 3} more)" if len(lost) > 3 else ""
        err_console.print(
            f"{tasks.name}: {len(lost)} task row(s) could not be read, so no sample can name "
            f"them: {'; '.join(lost[:3])}{more}",
            markup=False,
            highlight=False,
        )
    err_console.print(f"wrote {summary.rows} verdicts to {output}", markup=False, highlight=False)
    if report is not None:
        from sipdo.cli.verify_report import write_report

        write_report(output, report, data)
        err_console.print(f"wrote the report to {report}", markup=False, highlight=False)
