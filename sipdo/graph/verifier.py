"""The verifier: accepts a generated task only if the domain finds it sound."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sipdo.answers import Answer
from sipdo.graph.events import emit
from sipdo.graph.runtime import Deps, Tally
from sipdo.graph.state import SipdoState, VerificationEntry


def checker_answers_of(answers: Mapping[str, Any], task_id: str) -> list[Answer]:
    """The checkers' answers to one task, strings or structured (a lone string is what a
    checkpoint written before k-of-n checking holds)."""
    found = answers.get(task_id)
    if found is None:
        return []
    return list(found) if isinstance(found, list) else [found]


async def verifier(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """Verify every new task in parallel (with the checkers' answers for consensus).

    Accepted tasks become the learner's ``pending`` work and raise ``difficulty``
    to the highest accepted level; rejected ones are kept with the reason.
    """
    tally = Tally()
    tasks = state.get("new_tasks", [])
    answers = state.get("checker_answers", {})
    verdicts = await asyncio.gather(
        *(deps.verify_task(tally, t, checker_answers_of(answers, t["id"])) for t in tasks)
    )
    accepted: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for task, verdict in zip(tasks, verdicts, strict=True):
        ok = bool(verdict.get("passed"))
        reason = "verified" if ok else str(verdict.get("feedback") or "rejected by the verifier")
        if ok:
            accepted.append(task)
        else:
            rejected.append({**task, "reason": reason, "verdict": verdict})
        emit(
            "task_verdict",
            task_id=task["id"],
            accepted=ok,
            reason=reason,
            difficulty=int(task.get("difficulty", 0)),
            weakness=str(task.get("weakness", "")),
        )
        deps.record(
            "record_task",
            task=task,
            status="accepted" if ok else "rejected",
            reason=reason,
            verdict=verdict,
            difficulty=int(task.get("difficulty", 0)),
            weakness=str(task.get("weakness", "")),
        )
    difficulty = max([int(state.get("difficulty", 1))] + [int(t["difficulty"]) for t in accepted])
    entry: VerificationEntry = {
        "kind": "verification",
        "iteration": state.get("iteration", 0),
        "accepted": [t["id"] for t in accepted],
        "rejected": {r["id"]: r["reason"] for r in rejected},
    }
    return {
        "phase": "accepted",
        "pending": accepted,
        "new_tasks": [],
        "difficulty": difficulty,
        "accepted_tasks": accepted,
        "rejected_tasks": rejected,
        "history": [entry],
        "budget_used": deps.fold(state, tally, "verifier"),
    }
