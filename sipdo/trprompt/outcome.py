"""The learner answers a task under a prompt and the domain's verifier grades it.

The training rounds' step 1 (TRPrompt's "question answering" and "textual
reward"), written against the ``Domain`` seam so any domain can train a prompt
model; the graph's own solve step lives in ``sipdo.graph.runtime``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from sipdo.answers import answer_text
from sipdo.plugins.domains.base import Domain, SandboxProvider
from sipdo.sandbox import Sandbox
from sipdo.structured import ainvoke_text
from sipdo.trprompt.template import reward_of
from sipdo.verifiers.grading import agrade_answer


class OpenedSandbox(SandboxProvider):
    """The given sandbox, or ``open_sandbox(kind)`` at first use (closed by ``close``)."""

    def __init__(self, sandbox: Sandbox | None = None, kind: str = "auto") -> None:
        self._given = sandbox
        self._kind = kind
        self._opened: Sandbox | None = None

    async def get(self) -> Sandbox:
        if self._given is not None:
            return self._given
        if self._opened is None:
            from sipdo.sandbox.factory import open_sandbox

            self._opened = await asyncio.to_thread(open_sandbox, self._kind)
        return self._opened

    def close(self) -> None:
        opened, self._opened = self._opened, None
        if opened is not None:
            opened.close()


@dataclass(frozen=True)
class Outcome:
    """A graded answer; ``reward`` is its textual reward."""

    answer: str
    passed: bool
    score: float
    reward: str


async def answer_and_grade(
    learner: BaseChatModel,
    domain: Domain,
    sandbox: SandboxProvider,
    task: dict[str, Any],
    system_prompt: str,
) -> Outcome | None:
    """The learner's graded answer to ``task`` under ``system_prompt``; None when the task
    itself cannot be graded (its reference fails: it teaches nothing about the prompt)."""
    reply = await ainvoke_text(learner, domain.solve_messages(task, system_prompt))
    answer = domain.parse_answer(task, reply.text)
    verdict = await agrade_answer(domain, task, answer, sandbox=sandbox)
    if verdict.get("task_error"):
        return None
    return Outcome(
        answer=answer_text(answer),
        passed=bool(verdict.get("passed")),
        score=float(verdict.get("score", 0.0)),
        reward=reward_of(verdict),
    )
