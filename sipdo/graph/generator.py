"""The generator: new tasks aimed at the learner's failure modes, one level harder."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import HumanMessage

from sipdo.graph.events import emit
from sipdo.graph.runtime import Deps, Tally
from sipdo.graph.state import GenerationEntry, SipdoState, failure_records
from sipdo.structured import StructuredResult
from sipdo.verifiers.types import content_id


def pick_targets(failures: Sequence[Mapping[str, Any]], n: int) -> list[Mapping[str, Any] | None]:
    """One target per task to write: the failures in turn, or None ("harder in general")."""
    if not failures:
        return [None] * n
    return [failures[i % len(failures)] for i in range(n)]


def _reject(deps: Deps, state: SipdoState, entry: dict[str, Any]) -> dict[str, Any]:
    emit(
        "task_verdict",
        task_id=entry["id"],
        accepted=False,
        reason=entry["reason"],
        difficulty=entry.get("difficulty", 0),
        weakness=entry.get("weakness", ""),
    )
    deps.record(
        "record_task",
        task=entry,
        status="rejected",
        reason=entry["reason"],
        verdict=None,
        difficulty=int(entry.get("difficulty", 0)),
        weakness=str(entry.get("weakness", "")),
    )
    return entry


@dataclass(frozen=True)
class Rejected:
    """A generator reply that gave no task: the rejection entry to record."""

    entry: dict[str, Any]


def repeat_note(old: str) -> str:
    """What the generator's second request adds after it repeated the task ``old``."""
    return (
        f"Your last task repeated {old}, which already exists. Write a different task: "
        "a new problem with a new name, not a copy of any task you have seen."
    )


def _made(
    deps: Deps,
    iteration: int,
    difficulty: int,
    n: int,
    target: Mapping[str, Any] | None,
    result: StructuredResult[Any],
) -> dict[str, Any] | Rejected:
    """The task one generator reply holds, or why it holds none."""
    weakness = str((target or {}).get("task", {}).get("weakness", "")) or "harder edge cases"
    base = {"iteration": iteration, "difficulty": difficulty, "weakness": weakness}
    gid = content_id(str(iteration), str(n), *result.raw, prefix="gen")
    if result.value is None:
        reason = f"generator output unusable: {result.error}"
        return Rejected({"id": gid, "reason": reason, "raw_reply": result.last_reply, **base})
    provenance = {"iteration": iteration, "target": (target or {}).get("task", {}).get("id")}
    try:
        return dict(
            deps.domain.task_from_generated(
                result.value, difficulty=difficulty, weakness=weakness, provenance=provenance
            )
        )
    except ValueError as exc:
        return Rejected({"id": gid, "reason": f"malformed task: {exc}", **base})


def _repeats(
    deps: Deps, made: Sequence[dict[str, Any] | Rejected], seen: Mapping[str, str]
) -> list[dict[str, Any] | None]:
    """Per reply, the task it repeats: one written before (``seen``: its id, and the
    repeat's own name) or an earlier reply's; None if it is new or holds no task."""
    earlier: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any] | None] = []
    for task in made:
        if isinstance(task, Rejected):
            out.append(None)
            continue
        key = deps.domain.dedup_key(task)
        if key in seen:
            out.append({**task, "id": seen[key]})
        else:
            out.append(earlier.get(key))
        earlier.setdefault(key, task)
    return out


def _last(tasks: Sequence[dict[str, Any]], task_id: str) -> list[dict[str, Any]]:
    """``tasks`` with the one whose id is ``task_id`` moved to the end."""
    return sorted(tasks, key=lambda t: t.get("id") == task_id)


def _name(task: Mapping[str, Any]) -> str:
    entry = task.get("entry_point")
    return f"`{entry}`" if entry else f"task {task.get('id')}"


async def generator(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """Start an iteration: write ``tasks_per_iteration`` tasks in parallel, dedup them."""
    tally = Tally()
    iteration = int(state.get("iteration", 0)) + 1
    difficulty = min(int(state.get("difficulty", 1)) + 1, deps.domain.max_difficulty)
    emit("iteration_start", iteration=iteration, difficulty=difficulty)
    targets = pick_targets(failure_records(state), deps.budget.tasks_per_iteration)
    examples = [*state.get("seeds", []), *state.get("accepted_tasks", [])]
    rejections = [str(r.get("reason", "")) for r in state.get("rejected_tasks", [])[-3:]]
    reply_format = deps.domain.generated_format()
    results = await asyncio.gather(
        *(
            deps.structured(
                tally,
                "generator",
                deps.domain.generate_messages(
                    target=t, difficulty=difficulty, examples=examples, rejections=rejections
                ),
                reply_format,
            )
            for t in targets
        )
    )
    seen = dict(state.get("seen_keys", {}))
    made = [
        _made(deps, iteration, difficulty, n, target, result)
        for n, (target, result) in enumerate(zip(targets, results, strict=True))
    ]
    # A task that repeats one already written (a weak generator copies the example it
    # was shown) gets one more request: the repeated task moves to the end of the
    # examples (a domain shows the first), and the request says what was repeated.
    # Repeated again, it is rejected.
    repeats = {n: old for n, old in enumerate(_repeats(deps, made, seen)) if old}
    if repeats:
        retold = await asyncio.gather(
            *(
                deps.structured(
                    tally,
                    "generator",
                    [
                        *deps.domain.generate_messages(
                            target=targets[n],
                            difficulty=difficulty,
                            examples=_last(examples, old["id"]),
                            rejections=rejections,
                        ),
                        HumanMessage(content=repeat_note(_name(old))),
                    ],
                    reply_format,
                )
                for n, old in repeats.items()
            )
        )
        for n, result in zip(repeats, retold, strict=True):
            second = _made(deps, iteration, difficulty, n, targets[n], result)
            if not isinstance(second, Rejected):  # else the repeat is what gets rejected
                made[n] = second
    new_tasks: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for n, outcome in enumerate(made):
        if isinstance(outcome, Rejected):
            rejected.append(_reject(deps, state, outcome.entry))
            continue
        task = outcome
        key = deps.domain.dedup_key(task)
        if key in seen:
            dup_id = content_id(task["id"], str(iteration), str(n), prefix="dup")
            entry = {
                **task,
                "id": dup_id,
                "duplicate_of": seen[key],
                "reason": "duplicate of an earlier task",
                "iteration": iteration,
            }
            rejected.append(_reject(deps, state, entry))
            continue
        seen[key] = task["id"]
        new_tasks.append(task)
    summary: GenerationEntry = {
        "kind": "generation",
        "iteration": iteration,
        "difficulty": difficulty,
        "targets": [(t or {}).get("task", {}).get("id") for t in targets],
        "new": [t["id"] for t in new_tasks],
        "rejected": [r["id"] for r in rejected],
    }
    return {
        "iteration": iteration,
        "step": 0,
        "new_tasks": new_tasks,
        "checker_answers": {},
        "pending_candidate": None,
        "seen_keys": seen,
        "rejected_tasks": rejected,
        "history": [summary],
        "budget_used": deps.fold(state, tally, "generator"),
    }
