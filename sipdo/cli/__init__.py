"""The ``sipdo`` command (typer + rich): run, runs, show, export, report, sandbox, verify.

Errors of sipdo itself print one ``error:`` line and exit 1 (75 when a run stopped
on a fault outside it and is resumable: the message ends with the command); an unexpected
exception prints its type and message and exits 2 (``SIPDO_DEBUG=1`` shows the
traceback). Each command is a thin wrapper over ``sipdo.cli.run`` /
``sipdo.cli.inspect`` / ``sipdo.cli.sandbox``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sipdo.cli import sandbox as sandbox_commands
from sipdo.cli import train as train_commands
from sipdo.cli.common import (
    DbOption,
    JsonlOutputOption,
    check_sandbox,
    clean_errors,
    console,
    model_option,
    read_text_file,
    store_url,
    write_rows,
)
from sipdo.cli.eval import eval_command, evals_app
from sipdo.cli.report import report as report_command
from sipdo.cli.train import PromptModelOption, check_prompt_model
from sipdo.cli.verify import verify as verify_command
from sipdo.plugins.registry import DEFAULT_STRATEGY

app = typer.Typer(
    name="sipdo",
    help="Closed-loop, self-improving prompt optimizer with verified synthetic tasks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(sandbox_commands.app, name="sandbox")
app.command("verify")(verify_command)
app.command("eval")(eval_command)
app.add_typer(evals_app, name="evals")
app.command("report")(report_command)
app.command("train-prompt-model")(train_commands.train_prompt_model)


@app.command()
@clean_errors
def run(
    prompt: Annotated[
        str | None,
        typer.Option(help="The prompt to optimize. Default: a plain prompt for the domain."),
    ] = None,
    prompt_file: Annotated[
        Path | None, typer.Option(help="Read the prompt from this file.", show_default=False)
    ] = None,
    seeds: Annotated[
        Path | None,
        typer.Option(
            help="Seed tasks, JSONL. Default: the domain's shipped seeds.", show_default=False
        ),
    ] = None,
    model: Annotated[str | None, model_option("--model", "SIPDO_MODEL", "learner")] = None,
    generator_model: Annotated[
        str | None, model_option("--generator-model", "SIPDO_GENERATOR_MODEL", "generator")
    ] = None,
    checker_model: Annotated[
        str | None, model_option("--checker-model", "SIPDO_CHECKER_MODEL", "checker")
    ] = None,
    optimizer_model: Annotated[
        str | None, model_option("--optimizer-model", "SIPDO_OPTIMIZER_MODEL", "optimizer")
    ] = None,
    iterations: Annotated[
        int | None, typer.Option(min=1, help="Iterations (default 3).", show_default=False)
    ] = None,
    tasks_per_iteration: Annotated[
        int | None,
        typer.Option(
            min=1, help="Tasks the generator writes per iteration (default 2).", show_default=False
        ),
    ] = None,
    max_refinements: Annotated[
        int | None,
        typer.Option(
            min=1, help="Prompt candidates tried per iteration (default 3).", show_default=False
        ),
    ] = None,
    max_model_calls: Annotated[int | None, typer.Option(min=0, help="Model-call budget.")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=0, help="Token budget (in + out).")] = None,
    max_sandbox_seconds: Annotated[
        float | None, typer.Option(min=0, help="Sandbox-time budget in seconds.")
    ] = None,
    sandbox: Annotated[
        str | None, typer.Option(help="auto, docker or process (default auto).", show_default=False)
    ] = None,
    db: DbOption = None,
    run_id: Annotated[
        str | None, typer.Option(help="Id for a new run (default: generated).")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(help="Continue RUN_ID from its last checkpoint.", metavar="RUN_ID"),
    ] = None,
    domain: Annotated[str | None, typer.Option(help="Task domain (default code).")] = None,
    strategy: Annotated[
        str | None, typer.Option(help=f"Optimizer strategy (default {DEFAULT_STRATEGY}).")
    ] = None,
    gate: Annotated[
        str | None,
        typer.Option(
            help="Promotion policy: strict (no regression), statistical (paired sign test) "
            "or pareto (default statistical).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the strategies' randomness (default 0).")
    ] = None,
    model_timeout: Annotated[
        list[str] | None,
        typer.Option(
            metavar="[ROLE=]SECONDS",
            help="Longest wait for one reply of a model server (all roles, or one role: "
            "learner, generator, checker, optimizer); repeatable. Default: the client's.",
            show_default=False,
        ),
    ] = None,
    model_retry_for: Annotated[
        float | None,
        typer.Option(
            min=0,
            metavar="SECONDS",
            help="How long a model server that is down, hung or rate-limited is retried "
            "before the run stops, resumable (exit 75). Default 300.",
            show_default=False,
        ),
    ] = None,
    allow_specific: Annotated[
        bool | None,
        typer.Option(
            "--allow-specific",
            help="Promote candidates whose instructions name or paraphrase a training task, "
            "repeat its test values or carry a worked example (kept back by default).",
            show_default=False,
        ),
    ] = None,
    holdout: Annotated[
        str | None,
        typer.Option(
            help="Held-out set graded for the initial prompt and each promoted version: "
            "humaneval[:N] or a task JSONL file. Never shown to the loop.",
            show_default=False,
        ),
    ] = None,
    stop_on_holdout_drop: Annotated[
        bool | None,
        typer.Option(
            "--stop-on-holdout-drop",
            help="End the run when a promoted version scores below the best held-out "
            "pass@1 so far.",
            show_default=False,
        ),
    ] = None,
    prompt_model: PromptModelOption = None,
    demonstrations: Annotated[
        int | None,
        typer.Option(
            help="Let prompt candidates carry up to K verified demonstrations (learner "
            "answers the sandbox passed on training tasks, shown as earlier turns; try 3). "
            "Default 0: none.",
            show_default=False,
            min=0,
            max=16,
            metavar="K",
        ),
    ] = None,
) -> None:
    """Run the SIPDO loop on a prompt (or resume a run) with a live progress display."""
    from sipdo.cli.limits import parse_model_timeouts
    from sipdo.cli.run import RunOptions, execute, read_seeds
    from sipdo.errors import ConfigurationError
    from sipdo.store import RunStore

    if prompt is not None and prompt_file is not None:
        raise ConfigurationError("give --prompt or --prompt-file, not both")
    if resume is not None and (prompt or prompt_file or seeds or run_id):
        raise ConfigurationError("--resume continues a run as it was: no prompt, seeds or run id")
    check_sandbox(sandbox)
    text = read_text_file(prompt_file, "prompt file") if prompt_file is not None else prompt
    explicit: dict[str, Any] = {
        "model": model,
        "generator_model": generator_model,
        "checker_model": checker_model,
        "optimizer_model": optimizer_model,
        "iterations": iterations,
        "tasks_per_iteration": tasks_per_iteration,
        "max_refinements": max_refinements,
        "max_model_calls": max_model_calls,
        "max_tokens": max_tokens,
        "max_sandbox_seconds": max_sandbox_seconds,
        "sandbox": sandbox,
        "domain": domain,
        "strategy": strategy,
        "gate": gate,
        "seed": seed,
        "allow_specific": allow_specific,
        "holdout": holdout,
        "stop_on_holdout_drop": stop_on_holdout_drop,
        "demonstrations": demonstrations,
        "seed_tasks": read_seeds(seeds) if seeds is not None else None,
        "model_timeout": parse_model_timeouts(model_timeout or []),
        "model_retry_for": model_retry_for,
        "prompt_model": check_prompt_model(prompt_model) if prompt_model is not None else None,
    }
    opts = RunOptions().overridden_by(explicit)
    with RunStore(store_url(db)) as store:
        execute(store, opts, prompt=text, run_id=run_id, resume=resume, explicit=explicit)


@app.command()
@clean_errors
def runs(db: DbOption = None) -> None:
    """List the recorded runs."""
    from sipdo.cli.inspect import runs_table
    from sipdo.store import RunStore

    with RunStore(store_url(db)) as store:
        console.print(runs_table(store))


@app.command()
@clean_errors
def show(
    run_id: Annotated[str, typer.Argument(help="The run to show.")], db: DbOption = None
) -> None:
    """Show a run: prompt lineage with diffs, tasks with provenance, model usage."""
    from sipdo.cli.inspect import show_run
    from sipdo.store import RunStore

    with RunStore(store_url(db)) as store:
        console.print(show_run(store, run_id))


@app.command()
@clean_errors
def export(
    run_id: Annotated[str, typer.Argument(help="The run to export.")],
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", help="eval, sft, dpo, textual-reward or demonstrations."),
    ] = "eval",
    output: JsonlOutputOption = None,
    db: DbOption = None,
) -> None:
    """Export a run as JSONL training / evaluation data."""
    from sipdo.store import RunStore

    with RunStore(store_url(db)) as store:
        write_rows(store.export(run_id, fmt), output, f"{fmt} records")


def main() -> None:
    """Console entry point."""
    app()
