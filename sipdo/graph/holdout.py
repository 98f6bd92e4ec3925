"""Held-out tracking: the initial prompt and every promoted version graded on unseen tasks.

The held-out tasks never enter the state: the generator, the optimizer and the
learner's training tasks see none of them, only the graph's own bookkeeping
sees the numbers (``state["holdout"]``, one entry per graded version). The
grading is ``sipdo.evaluation``'s, with the learner's model greedy, so a
held-out number here is the number ``sipdo eval`` prints for the same prompt;
with a run store each graded sample is kept as it is graded, so a resumed run
repeating an evaluation grades only what is missing. Sandbox engine trouble
during the grading is treated as in the loop's own verifications
(``sipdo.graph.infra.patiently``): a sample whose failing grade met an
abnormal sandbox run is graded again, a ``SandboxError`` is retried for
``SIPDO_SANDBOX_RETRY_S`` seconds, and past that ``SandboxUnavailableError``
stops the run, resumable; a sample is never graded wrong for the engine's sake.

Held-out calls are measurement, not search: they are recorded under the role
``holdout`` (usage and cost per role) but not counted against the run's
budget, whose estimate states them separately. At most ``iterations + 1``
versions are graded (one promotion per iteration, plus the initial prompt).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.graph.runtime import Deps


@dataclass(frozen=True)
class Holdout:
    """Held-out tasks (the domain's: ``CodeTask``s for code) and what a drop in their score does.

    ``stop_on_drop``: end the run (stop reason ``holdout_drop``) when a promoted
    version scores below the best held-out pass@1 so far by more than
    ``tolerance`` (a fraction: 0.05 = five points).
    """

    tasks: tuple[Any, ...]
    label: str
    stop_on_drop: bool = False
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ConfigurationError("a held-out set needs at least one task")
        if not 0 <= self.tolerance < 1:
            raise ConfigurationError(f"tolerance must be in [0, 1), got {self.tolerance!r}")


def resolve_holdout(
    spec: str | Sequence[Any] | Holdout | None, *, stop_on_drop: bool = False
) -> Holdout | None:
    """A ``Holdout`` from ``"humaneval:40"``, a task file's path, a list of tasks or itself."""
    if spec is None or isinstance(spec, Holdout):
        return spec
    from sipdo.evaluation import holdout_tasks

    if isinstance(spec, str):
        return Holdout(tuple(holdout_tasks(spec)), spec, stop_on_drop)
    # Read as the domain's tasks when the graph is built (CodeTasks for the code domain).
    tasks = tuple(spec)
    return Holdout(tasks, f"{len(tasks)} tasks", stop_on_drop)


def graded_right(grade: Any) -> bool:
    """A sample's grade that needs no second look: passed both ways."""
    return bool(grade.base_passed and grade.full_passed)


async def grade_version(
    deps: Deps,
    state: Mapping[str, Any],
    version_id: str,
    text: str,
    demos: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The ``holdout`` state update for one prompt version (an empty dict without a set);
    a version's demonstrations are shown before each held-out task, as in training."""
    holdout = deps.holdout
    if holdout is None:
        return {}
    from sipdo.evaluation import aevaluate_prompt
    from sipdo.graph.demonstrations import Demonstrating
    from sipdo.graph.infra import patiently
    from sipdo.graph.runtime import run_id

    def patient(grading: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        return patiently(grading, deps.sandbox_retry, passed=graded_right)

    source = run_id() if deps.run_store is not None else None
    result = await aevaluate_prompt(
        text,
        deps.models["learner"],
        list(holdout.tasks),
        sandbox=await deps.watched_sandbox(),
        store=deps.run_store,
        benchmark=holdout.label,
        domain=Demonstrating(deps.domain, demos) if demos else deps.domain,
        config=getattr(deps.domain, "verifier_config", None),
        source_run_id=source,
        source_version=version_id,
        source_iteration=int(state.get("iteration", 0)),
        prompt_model=deps.prompt_model,
        guard=patient,
    )
    graded = [t for t in result.tasks if t.n]
    entry = {
        "kind": "holdout",
        "iteration": int(state.get("iteration", 0)),
        "version_id": version_id,
        "eval_id": result.eval_id,
        "passed": sum(1 for t in graded if t.full),
        "total": len(graded),
        "pass_at_1": round(float(result.pass_at_1 or 0.0), 6),
        "base_pass_at_1": round(float(result.base_pass_at_1 or 0.0), 6),
        "problems": len(result.problems),
    }
    if deps.run_store is not None:
        deps.record(
            "record_usage",
            role="holdout",
            model=result.model,
            calls=result.usage.calls,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            latency_s=result.usage.model_seconds,
            call_id=f"holdout:{result.eval_id}",
        )
    from sipdo.graph.events import emit

    emit("holdout_result", **{k: v for k, v in entry.items() if k != "kind"})
    update: dict[str, Any] = {"holdout": [*state.get("holdout", []), entry], "history": [entry]}
    before = [float(h["pass_at_1"]) for h in state.get("holdout", [])]
    if holdout.stop_on_drop and before and entry["pass_at_1"] < max(before) - holdout.tolerance:
        update["stop_requested"] = "holdout_drop"
    return update
