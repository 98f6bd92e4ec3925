"""The learner: the incumbent prompt answers the pending tasks; the cells join the score table."""

from __future__ import annotations

from typing import Any

from sipdo.graph.demonstrations import collect
from sipdo.graph.events import emit
from sipdo.graph.runtime import Deps, Tally
from sipdo.graph.scoring import score
from sipdo.graph.state import LearnerEntry, SipdoState


async def learner(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """Grade the incumbent on ``pending`` in parallel; the graded tasks join ``tasks``.

    A failure here is a real weakness: the task is a seed or was verified sound.
    A task that cannot be graded at all (a seed whose reference fails its own
    tests) leaves the loop as a rejected task. When the run allows demonstrations,
    every passed answer joins the pool (``sipdo.graph.demonstrations``).
    """
    tally = Tally()
    pending = state.get("pending", [])
    vid = state["version_id"]
    by_id = {t["id"]: t for t in pending}
    cells, results = await score(
        deps,
        tally,
        table=state.get("score_table", {}),
        candidates=state["candidates"],
        tasks=by_id,
        cids=[vid],
        task_ids=list(by_id),
        pool=state.get("demonstrations", {}),
    )
    broken: list[dict[str, Any]] = []
    for result in results:
        task, verdict = result["task"], result["verdict"]
        if verdict.get("task_error"):
            broken.append({**task, "reason": str(verdict.get("feedback")), "verdict": verdict})
            continue
        emit(
            "learner_result",
            task_id=task["id"],
            passed=bool(verdict.get("passed")),
            score=float(verdict.get("score", 0)),
        )
    gone = {t["id"] for t in broken}
    row = {tid: cell for tid, cell in cells.get(vid, {}).items() if tid not in gone}
    entry: LearnerEntry = {
        "kind": "learner",
        "phase": state.get("phase", "seed"),
        "iteration": state.get("iteration", 0),
        "version_id": vid,
        "passed": [tid for tid, cell in row.items() if cell["passed"]],
        "failed": sorted(tid for tid, cell in row.items() if not cell["passed"]),
        "ungradable": sorted(gone),
    }
    demos = collect(deps.domain, results, held_out=deps.held_out) if deps.demos.enabled else {}
    return {
        **({"demonstrations": demos} if demos else {}),
        "pending": [],
        "verified_tasks": {**state.get("verified_tasks", {}), **{tid: by_id[tid] for tid in row}},
        "score_table": {vid: row} if row else {},
        "rejected_tasks": broken,
        "history": [entry],
        "budget_used": deps.fold(state, tally, "learner"),
    }
