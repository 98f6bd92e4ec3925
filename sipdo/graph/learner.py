"""The learner: the model under the current prompt solves the pending tasks."""

from __future__ import annotations

import asyncio
from typing import Any

from sipdo.graph.events import emit
from sipdo.graph.runtime import Deps, Tally
from sipdo.graph.state import SipdoState


def _merge_solved(solved: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    known = {t["id"] for t in solved}
    return solved + [t for t in new if t["id"] not in known]


async def learner(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """Solve ``pending`` in parallel; passes join ``solved``, failures join ``failures``.

    A failure here is a real weakness: the task is a seed or was verified sound.
    """
    tally = Tally()
    tasks = state.get("pending", [])
    prompt = state["current_prompt"]
    vid = state["version_id"]
    results = await asyncio.gather(*(deps.solve_and_grade(tally, t, prompt) for t in tasks))
    passed: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    broken: list[dict[str, Any]] = []
    for result in results:
        task, verdict = result["task"], result["verdict"]
        if verdict.get("task_error"):
            # Not the learner's fault: the task cannot be graded, so it leaves the loop.
            broken.append({**task, "reason": str(verdict.get("feedback")), "verdict": verdict})
            continue
        ok = bool(verdict.get("passed"))
        (passed if ok else failed).append(result)
        emit("learner_result", task_id=task["id"], passed=ok, score=float(verdict.get("score", 0)))
        deps.record(
            "record_attempt",
            task_id=task["id"],
            prompt_version_id=vid,
            role="learner",
            answer=result["answer"],
            passed=ok,
            score=float(verdict.get("score", 0.0)),
            feedback=str(verdict.get("feedback", "")),
        )
    failed_ids = {r["task"]["id"] for r in failed}
    old_failures = [f for f in state.get("failures", []) if f["task"]["id"] not in failed_ids]
    entry = {
        "kind": "learner",
        "phase": state.get("phase", "seed"),
        "iteration": state.get("iteration", 0),
        "version_id": vid,
        "passed": [r["task"]["id"] for r in passed],
        "failed": sorted(failed_ids),
        "ungradable": [t["id"] for t in broken],
    }
    return {
        "pending": [],
        "solved": _merge_solved(state.get("solved", []), [r["task"] for r in passed]),
        "failures": old_failures + failed,
        "rejected_tasks": [*state.get("rejected_tasks", []), *broken],
        "history": [*state.get("history", []), entry],
        "budget_used": deps.fold(state, tally, "learner"),
    }
