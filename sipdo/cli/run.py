"""``sipdo run``: build the graph, stream it with a live display, checkpoint, resume."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.live import Live
from rich.panel import Panel
from rich.text import Text
from sqlalchemy.engine import make_url

from sipdo.cli.common import console, read_text_file
from sipdo.cli.limits import resume_command, stopped, with_limits
from sipdo.cli.owner import alive, this_process
from sipdo.cli.progress import ProgressView, describe
from sipdo.cli.scripted import materialize
from sipdo.errors import (
    ConfigurationError,
    ModelBackendDownError,
    RunNotFoundError,
    SandboxUnavailableError,
    StoreUnavailableError,
)
from sipdo.plugins.registry import DEFAULT_STRATEGY
from sipdo.store import RunStore, sipdo_home

# Faults outside the run that end it resumably (exit 75, the resume command printed).
STOPPING = (ModelBackendDownError, StoreUnavailableError, SandboxUnavailableError)

ROLE_OPTIONS = {
    "model": "learner",
    "generator_model": "generator",
    "checker_model": "checker",
    "optimizer_model": "optimizer",
}


@dataclass
class RunOptions:
    """Everything ``sipdo run`` was told; stored with the run so ``--resume`` rebuilds it."""

    model: str | None = None
    generator_model: str | None = None
    checker_model: str | None = None
    optimizer_model: str | None = None
    iterations: int | None = None
    tasks_per_iteration: int | None = None
    max_refinements: int | None = None
    max_model_calls: int | None = None
    max_tokens: int | None = None
    max_sandbox_seconds: float | None = None
    sandbox: str = "auto"
    domain: str = "code"
    strategy: str = DEFAULT_STRATEGY
    gate: str = "statistical"
    seed: int = 0
    allow_specific: bool = False
    holdout: str | None = None
    stop_on_holdout_drop: bool = False
    demonstrations: int = 0
    seed_tasks: list[dict[str, Any]] | None = None
    model_timeout: dict[str, float] | None = None  # role (or "*") -> seconds per call
    model_retry_for: float | None = None
    prompt_model: str | None = None  # a trained prompt model's directory (absolute)

    def overridden_by(self, other: dict[str, Any]) -> RunOptions:
        """These options with every non-None value of ``other`` taking precedence."""
        merged = asdict(self)
        merged.update({k: v for k, v in other.items() if v is not None and k in merged})
        return RunOptions(**merged)

    @classmethod
    def from_saved(cls, saved: Any) -> RunOptions:
        names = {f.name for f in fields(cls)}
        data = saved if isinstance(saved, dict) else {}
        return cls(**{k: v for k, v in data.items() if k in names})


def read_seeds(path: Path) -> list[dict[str, Any]]:
    """Seed tasks from a JSONL file (one JSON object a line; blank lines skipped)."""
    tasks: list[dict[str, Any]] = []
    for number, line in enumerate(read_text_file(path, "seed file").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            task = json.loads(line)
        except ValueError as exc:
            raise ConfigurationError(f"{path} line {number}: invalid JSON: {exc}") from exc
        if not isinstance(task, dict):
            raise ConfigurationError(f"{path} line {number}: a seed task must be a JSON object")
        tasks.append(task)
    if not tasks:
        raise ConfigurationError(f"{path}: no seed tasks in the file")
    return tasks


def checkpoint_path(url: str) -> Path:
    """The SQLite checkpoint file: next to a SQLite run store, else in ``sipdo_home()``."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
        db = Path(database).expanduser()
        return db.with_name(db.stem + ".checkpoints.db")
    return sipdo_home() / "checkpoints.db"


DEFAULT_PROMPT = (
    "You are a careful Python programmer. Write a complete, correct implementation of the "
    "requested function that handles every case its docstring describes. Reply with code only."
)


def check_plugins(opts: RunOptions) -> tuple[Any, Any]:
    """The domain and the strategy; fails before anything is recorded on an unknown
    domain / strategy / gate or a bad seed task."""
    from sipdo.graph.builder import resolve_plugin
    from sipdo.plugins.domains.base import Domain
    from sipdo.plugins.optimizers.base import Strategy
    from sipdo.plugins.optimizers.gates import resolve_gate

    domain = resolve_plugin("sipdo.domains", opts.domain, Domain)  # type: ignore[type-abstract]
    strategy = resolve_plugin("sipdo.optimizers", opts.strategy, Strategy)  # type: ignore[type-abstract]
    resolve_gate(opts.gate)
    if opts.holdout is not None:
        from sipdo.evaluation import holdout_tasks

        holdout_tasks(opts.holdout)  # an unknown benchmark or unreadable file fails now
    if opts.prompt_model is not None:
        from sipdo.cli.train import check_prompt_model

        check_prompt_model(Path(opts.prompt_model))  # missing extra, model or adapter: now
    for number, task in enumerate(opts.seed_tasks or [], start=1):
        try:
            domain.validate_task(task)
        except ConfigurationError as exc:
            raise ConfigurationError(f"seed task {number}: {exc}") from exc
    return domain, strategy


def print_estimate(opts: RunOptions, domain: Any, strategy: Any) -> None:
    """Before a run starts: how many model calls its budget allows."""
    from sipdo.graph.budget import estimate_calls

    n_seeds = len(opts.seed_tasks) if opts.seed_tasks is not None else len(domain.seed_tasks())
    budget = _budget(opts)
    per_step, demos = strategy.estimate_calls, opts.demonstrations
    calls = estimate_calls(budget, n_seeds=n_seeds, per_step=per_step, demonstrations=demos)
    roles = ", ".join(f"{role} {n}" for role, n in calls.items())
    line = f"budget: up to ~{sum(calls.values())} model calls ({roles})"
    if budget.model_calls is not None:
        line += f"; capped by --max-model-calls {budget.model_calls}"
    console.print(line + f"; promotion policy: {opts.gate}", markup=False)
    power = gate_power_line(opts.gate, n_seeds)
    if power:
        console.print(power, markup=False)
    if opts.demonstrations:
        console.print(
            f"demonstrations: candidates may carry up to {opts.demonstrations} verified "
            "demonstrations (a step may evaluate one more candidate)",
            markup=False,
        )
    if opts.holdout is not None:
        from sipdo.evaluation import holdout_tasks

        n = len(holdout_tasks(opts.holdout))
        console.print(
            f"held-out {opts.holdout}: {n} tasks graded for the initial prompt and each "
            f"promoted version, at most {n * (budget.iterations + 1)} more learner calls "
            "(not counted against the budget)",
            markup=False,
        )


POWER_MAX_TASKS = 300  # past this the exact sum takes seconds; the line is left out


def gate_power_line(gate: str, n_tasks: int) -> str | None:
    """What the promotion policy can see on ``n_tasks`` verified tasks (the model of
    ``gates.promotion_rate``: ~16% of outcomes flip per edit), or None past
    ``POWER_MAX_TASKS`` tasks or for a policy that is not a shipped one."""
    from sipdo.plugins.optimizers.gates import EDIT_CHURN, GATES, promotion_rate

    if gate not in GATES or not 0 < n_tasks <= POWER_MAX_TASKS:
        return None
    policy = GATES[gate]()
    real = [promotion_rate(policy, n_tasks, effect) for effect in (0.05, 0.10)]
    null = promotion_rate(policy, n_tasks, 0.0)
    return (
        f"gate power on {n_tasks} verified task(s) (a model: {EDIT_CHURN:.0%} of outcomes "
        f"flip per edit): {gate} ships a real +5-point edit {real[0]:.0%} of the time, a "
        f"+10-point one {real[1]:.0%}, one that changes nothing {null:.0%}; accepted tasks "
        "add to the count (benchmarks/gate_power.py)"
    )


def new_run_id() -> str:
    return f"run-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _budget(opts: RunOptions) -> Any:
    from sipdo.graph import Budget

    default = Budget()
    return Budget(
        iterations=opts.iterations if opts.iterations is not None else default.iterations,
        tasks_per_iteration=opts.tasks_per_iteration or default.tasks_per_iteration,
        max_refinements=opts.max_refinements or default.max_refinements,
        model_calls=opts.max_model_calls,
        tokens=opts.max_tokens,
        sandbox_seconds=opts.max_sandbox_seconds,
    )


async def _drive(
    store: RunStore,
    run_id: str,
    opts: RunOptions,
    first_input: dict[str, Any] | None,
    view: ProgressView,
) -> dict[str, Any]:
    """Run (or resume) the graph to the end; return its final state values."""
    from sipdo.cli.checkpoints import open_checkpoints
    from sipdo.graph import create_sipdo_graph

    models = materialize({k: getattr(opts, k) for k in ROLE_OPTIONS})
    if models["model"] is None:
        # No learner given: every role left open takes its own default (the
        # offline defaults pair a small learner with a stronger generator,
        # checker and optimizer). With a learner given, open roles share it.
        from sipdo.plugins.models import default_model_spec

        for option, role in ROLE_OPTIONS.items():
            if models[option] is None:
                models[option] = default_model_spec(role)
    models = with_limits(models, ROLE_OPTIONS, opts.model_timeout, opts.model_retry_for)
    sandbox = None
    if opts.sandbox != "auto":
        from sipdo.sandbox.factory import open_sandbox

        sandbox = open_sandbox(opts.sandbox)
    ckpt = checkpoint_path(store.url)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    config: Any = {"configurable": {"thread_id": run_id, "run_id": run_id}}
    try:
        async with open_checkpoints(ckpt, store.retry) as saver:
            graph = create_sipdo_graph(
                models.pop("model"),
                **models,
                domain=opts.domain,
                strategy=opts.strategy,
                sandbox=sandbox,
                checkpointer=saver,
                run_store=store,
                budget=_budget(opts),
                gate=opts.gate,
                seed=opts.seed,
                allow_specific=opts.allow_specific,
                holdout=opts.holdout,
                stop_on_holdout_drop=opts.stop_on_holdout_drop,
                prompt_model=opts.prompt_model,
                demonstrations=opts.demonstrations,
            )
            view.iterations = _budget(opts).iterations
            snapshot = await graph.aget_state(config)
            if finished(snapshot):
                console.print(f"run {run_id} had already finished", markup=False)
                return dict(snapshot.values)
            graph_input = None if snapshot.values else first_input
            store.mark_running(run_id, this_process())
            await _stream(graph, graph_input, config, view)
            return dict((await graph.aget_state(config)).values)
    finally:
        if sandbox is not None:
            sandbox.close()


def finished(snapshot: Any) -> bool:
    """Whether the checkpointed graph has nothing left to do.

    Not ``not snapshot.next``: LangGraph saves a checkpoint in the background while
    the next step runs, so a process killed at the wrong moment leaves a step's
    writes saved and the checkpoint after them not. The snapshot then lists that
    step's task, with its writes, and no ``next``; resuming applies the writes and
    goes on. Finished means no task at all.
    """
    return bool(snapshot.values) and not snapshot.tasks


async def _stream(graph: Any, graph_input: Any, config: Any, view: ProgressView) -> None:
    def on_event(chunk: Any) -> bool:
        if isinstance(chunk, dict) and "event" in chunk:
            view.apply(chunk)
            return True
        return False

    stream = graph.astream(graph_input, config, stream_mode=["custom", "updates"])
    if console.is_terminal:
        with Live(view.render(), console=console, refresh_per_second=4) as live:
            async for mode, chunk in stream:
                if mode == "custom" and on_event(chunk):
                    live.update(view.render())
    else:
        started = time.monotonic()
        async for mode, chunk in stream:
            if mode == "custom" and on_event(chunk):
                minutes, seconds = divmod(int(time.monotonic() - started), 60)
                console.print(
                    f"[{minutes:02d}:{seconds:02d}] {describe(chunk)}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
                console.file.flush()  # a pipe or log file sees each line as it happens


def execute(
    store: RunStore,
    opts: RunOptions,
    *,
    prompt: str | None,
    run_id: str | None,
    resume: str | None,
    explicit: dict[str, Any],
) -> dict[str, Any]:
    """Start a new run (``prompt``) or resume one (``resume``); return the final state."""
    if resume is not None:
        run = store.get_run(resume)
        owner = run.config.get("owner") or {}
        if run.status == "running" and alive(owner):
            raise ConfigurationError(
                f"run {resume!r} is being run by process {owner.get('pid')} on this machine; "
                "stop it first"
            )
        opts = RunOptions.from_saved(run.config.get("cli")).overridden_by(explicit)
        run_id = resume
        first_input: dict[str, Any] = {
            "prompt": run.initial_prompt,
            **({"seed_tasks": opts.seed_tasks} if opts.seed_tasks is not None else {}),
        }
    else:
        domain, strategy = check_plugins(opts)
        print_estimate(opts, domain, strategy)
        if prompt is None:
            prompt = str(getattr(domain, "default_prompt", "") or DEFAULT_PROMPT)
            console.print(
                f"no --prompt given: optimizing the default prompt:\n{prompt}", markup=False
            )
        if not prompt.strip():
            raise ConfigurationError("the prompt to optimize is empty")
        run_id = run_id or new_run_id()
        try:
            store.get_run(run_id)
        except RunNotFoundError:
            pass
        else:
            raise ConfigurationError(f"run {run_id!r} exists; continue it with --resume {run_id}")
        first_input = {"prompt": prompt}
        if opts.seed_tasks is not None:
            first_input["seed_tasks"] = opts.seed_tasks
        store.create_run(run_id, {"cli": asdict(opts)}, prompt)
    resume_with = resume_command(run_id, store.url)
    console.print(f"sipdo run {run_id}  (resume with: {resume_with})", markup=False)
    view = ProgressView(run_id=run_id)
    try:
        final = asyncio.run(_drive(store, run_id, opts, first_input, view))
    except STOPPING as exc:
        raise stopped(store, run_id, first_input["prompt"], exc) from exc
    except Exception as exc:
        # Resumable all the same: --resume continues from the last checkpoint.
        store.finish_run(run_id, "failed", first_input["prompt"], f"error: {exc}")
        raise
    except KeyboardInterrupt:
        console.print(f"interrupted: continue with `{resume_with}`", markup=False)
        raise
    summarize(run_id, final, view)
    return final


def holdout_lines(entries: list[dict[str, Any]]) -> list[str]:
    """The held-out curve as closing lines: the initial prompt, each promoted version."""
    lines = []
    for i, entry in enumerate(entries):
        label = "initial prompt" if i == 0 else f"promoted {entry['version_id']}"
        lines.append(
            f"held-out {label}: {entry.get('passed', 0)}/{entry.get('total', 0)} "
            f"pass@1 {float(entry['pass_at_1']):.3f} "
            f"(own tests only {float(entry.get('base_pass_at_1', 0.0)):.3f})"
        )
    if len(entries) > 1:
        delta = float(entries[-1]["pass_at_1"]) - float(entries[0]["pass_at_1"])
        lines.append(f"held-out change since the initial prompt: {delta:+.3f} pass@1")
    elif entries:
        lines.append("held-out: no version was promoted, the initial prompt stands")
    return lines


def summarize(run_id: str, final: dict[str, Any], view: ProgressView) -> None:
    """The closing lines: why it stopped, counts, the best prompt."""
    accepted = len(final.get("accepted_tasks") or [])
    rejected = len(final.get("rejected_tasks") or [])
    console.print(
        f"stopped: {final.get('stop_reason') or view.stop_reason or '?'}   "
        f"tasks accepted {accepted}, rejected {rejected}   "
        f"iterations {final.get('iteration', view.iteration)}",
        markup=False,
        highlight=False,
    )
    for line in holdout_lines(final.get("holdout") or []):
        console.print(line, markup=False, highlight=False)
    best = final.get("best_prompt")
    if best:
        console.print(Panel(Text(str(best)), title="best prompt", expand=False))
    console.print(
        f"details: sipdo show {run_id}    data: sipdo export {run_id} --format sft", markup=False
    )
