"""The checker: solves each new task independently, never seeing the generator's answer."""

from __future__ import annotations

import asyncio
from typing import Any

from sipdo.answers import Answer
from sipdo.graph.runtime import Deps, Tally
from sipdo.graph.state import SipdoState


async def checker(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """``checker_answers``: task id -> the domain's ``n_checkers`` independent answers,
    every call in parallel. What the checker sees is the domain's ``checker_messages``
    (the task without its answer); a domain's ``acheck`` may hold a multi-turn exchange
    (every call counted against the checker's budget)."""
    tally = Tally()
    tasks = state.get("new_tasks", [])
    domain = deps.domain
    n = max(1, int(domain.n_checkers))

    async def ask(messages: Any) -> str:
        return await deps.text(tally, "checker", messages)

    async def solve(task: dict[str, Any]) -> Answer:
        acheck = getattr(domain, "acheck", None)  # optional on the Domain protocol
        if acheck is not None:
            answer: Answer = await acheck(task, ask)
            return answer
        return domain.parse_answer(task, await ask(domain.checker_messages(task)))

    answers = await asyncio.gather(*(solve(t) for t in tasks for _ in range(n)))
    return {
        "checker_answers": {t["id"]: answers[i * n : (i + 1) * n] for i, t in enumerate(tasks)},
        "budget_used": deps.fold(state, tally, "checker"),
    }
