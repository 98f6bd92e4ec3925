"""The checker: solves each new task independently, never seeing the generator's answer."""

from __future__ import annotations

import asyncio
from typing import Any

from sipdo.graph.runtime import Deps, Tally
from sipdo.graph.state import SipdoState

CHECKER_PROMPT = (
    "You are an independent checker. Solve the task exactly as its specification says, "
    "handling every edge case it mentions. Answer with working code only."
)


def _blind(task: dict[str, Any]) -> dict[str, Any]:
    """The task without anything that gives the answer away."""
    return {k: v for k, v in task.items() if k not in ("reference_solution", "tests")}


async def checker(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """``checker_answers``: task id -> the checker's answer, all tasks in parallel."""
    tally = Tally()
    tasks = state.get("new_tasks", [])

    async def solve(task: dict[str, Any]) -> str:
        blind = _blind(task)
        reply = await deps.text(tally, "checker", deps.domain.solve_messages(blind, CHECKER_PROMPT))
        return deps.domain.parse_answer(blind, reply)

    answers = await asyncio.gather(*(solve(t) for t in tasks))
    return {
        "checker_answers": {t["id"]: a for t, a in zip(tasks, answers, strict=True)},
        "budget_used": deps.fold(state, tally, "checker"),
    }
