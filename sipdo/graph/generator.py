"""The generator: new tasks aimed at the learner's failure modes, one level harder."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from sipdo.graph.events import emit
from sipdo.graph.runtime import Deps, Tally
from sipdo.graph.state import GenerationEntry, SipdoState, failure_records
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
    new_tasks: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for n, (target, result) in enumerate(zip(targets, results, strict=True)):
        weakness = str((target or {}).get("task", {}).get("weakness", "")) or "harder edge cases"
        base = {"iteration": iteration, "difficulty": difficulty, "weakness": weakness}
        if result.value is None:
            gid = content_id(str(iteration), str(n), *result.raw, prefix="gen")
            reason = f"generator output unusable: {result.error}"
            entry = {"id": gid, "reason": reason, "raw_reply": result.last_reply, **base}
            rejected.append(_reject(deps, state, entry))
            continue
        provenance = {"iteration": iteration, "target": (target or {}).get("task", {}).get("id")}
        try:
            task = deps.domain.task_from_generated(
                result.value, difficulty=difficulty, weakness=weakness, provenance=provenance
            )
        except ValueError as exc:
            gid = content_id(str(iteration), str(n), *result.raw, prefix="gen")
            rejected.append(
                _reject(deps, state, {"id": gid, "reason": f"malformed task: {exc}", **base})
            )
            continue
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
