"""The ``Domain`` seam: what a task is, and how it is generated, solved and verified.

``Domain`` is the protocol the graph calls; ``BaseDomain`` implements it with
the defaults, so a new domain subclasses ``BaseDomain`` and writes only what is
its own: seed tasks, validation, the generator's and solver's messages, and the
two verification coroutines. The graph holds no knowledge of any domain: what
the checker sees, how many checkers answer, the default prompt to optimize and
how an answer is read out of a reply are all asked of the domain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel

from sipdo.answers import Answer, answer_text
from sipdo.structured import ReplyFormat, json_format
from sipdo.verifiers.grading import SandboxProvider

Task = dict[str, Any]
VerdictDict = dict[str, Any]
Ask = Callable[[Sequence[BaseMessage]], Awaitable[str]]  # one model call: messages -> reply

__all__ = [
    "Answer",
    "Ask",
    "BaseDomain",
    "Domain",
    "SandboxProvider",
    "Task",
    "VerdictDict",
    "answer_text",
]

CHECKER_PROMPT = (
    "You are an independent checker. Solve the task exactly as its specification says, "
    "handling every case it mentions."
)


@runtime_checkable
class Domain(Protocol):
    """A kind of task the loop can learn on (``code``, ``plan``, ``qa``, or a user's).

    Invariants:

    - A task is a JSON-safe ``dict`` with a stable, content-derived ``"id"``, an
      int ``"difficulty"`` (1..``max_difficulty``) and a ``"weakness"`` string; it
      round-trips through the checkpointer unchanged.
    - Message builders and parsers are pure (no I/O); only the two ``averify_*``
      coroutines touch the sandbox. An answer (``Answer``) is a string or JSON-safe
      structured data (dicts with string keys, lists, str, int, float, bool,
      None; e.g. ``qa``'s ``{"final_answers": [...]}``): it goes into graph state,
      the run store (``AttemptRecord.value``) and exports as it is; its text form
      (``sipdo.verifiers.grading.answer_text``) is what prompts show. Anything else
      is refused by the grading service with a ``PluginError``.
    - A verdict is a ``sipdo.verifiers.Verdict`` or a JSON-safe dict with at least
      ``passed`` (bool), ``score`` (0..1) and ``feedback`` (text an optimizer can
      act on).
    - Solver-facing messages (``solve_messages``, ``checker_messages``) never show
      the task's answer.

    Error policy: a bad generated task or a wrong answer is *data* —
    ``task_from_generated`` raises ``ValueError`` (the graph rejects the task
    with that message) and the verifiers return a failing verdict. Only the
    system failing raises: ``SandboxError`` / ``VerificationError`` from the
    verifiers, ``ConfigurationError`` from ``validate_task`` for bad user input.
    ``sipdo.verifiers.grading`` turns what is left into verdicts the same way for
    every caller.
    """

    name: str
    max_difficulty: int
    generated_schema: type[BaseModel]
    default_prompt: str  # the prompt optimized when the user gives none
    n_checkers: int  # independent checker answers per generated task (k-of-n consensus)

    def seed_tasks(self) -> list[Task]:
        """The shipped seed tasks, validated."""
        ...

    def validate_task(self, data: Mapping[str, Any]) -> Task:
        """A user-supplied task in normal form; ``ConfigurationError`` says what is wrong."""
        ...

    def generated_format(self) -> ReplyFormat[BaseModel]:
        """How the generator's reply is asked for and parsed."""
        ...

    def task_from_generated(
        self, generated: BaseModel, *, difficulty: int, weakness: str, provenance: Mapping[str, Any]
    ) -> Task:
        """Turn the generator's structured output into a task; ``ValueError`` if unusable."""
        ...

    def dedup_key(self, task: Task) -> str:
        """Two tasks with the same key are duplicates."""
        ...

    def solve_messages(self, task: Task, system_prompt: str) -> list[BaseMessage]:
        """Messages asking a solver to answer ``task`` (never shows the reference answer)."""
        ...

    def checker_messages(self, task: Task) -> list[BaseMessage]:
        """Messages asking an independent checker to answer ``task`` blind."""
        ...

    def parse_answer(self, task: Task, text: str) -> Answer:
        """The answer inside a solver's reply (for code: the module source)."""
        ...

    async def asolve(self, task: Task, system_prompt: str, ask: Ask) -> Answer:
        """The solver's answer to ``task`` under ``system_prompt``; ``ask`` is one call of
        the solver's model (counted against the budget). One call by default; a domain
        may hold a multi-turn exchange (tool results fed back, a retry on a bad reply)."""
        ...

    async def acheck(self, task: Task, ask: Ask) -> Answer:
        """The checker's independent answer to ``task`` (blind: ``checker_messages``);
        ``ask`` is one call of the checker's model. One call by default; a domain may
        hold the same multi-turn exchange as ``asolve``. Optional: the graph falls
        back to one call of ``checker_messages`` for a domain without it."""
        ...

    def generate_messages(
        self,
        *,
        target: Mapping[str, Any] | None,
        difficulty: int,
        examples: Sequence[Task],
        rejections: Sequence[str] = (),
    ) -> list[BaseMessage]:
        """Messages asking for one new task at ``difficulty`` aimed at ``target``, a
        failure (task, answer, verifier feedback) or None for "harder in general";
        ``examples`` are the tasks written so far (a domain that shows one shows the
        first it may); ``rejections`` are the verifier's reasons for recently rejected
        tasks."""
        ...

    def describe_failure(self, failure: Mapping[str, Any]) -> str:
        """A short text of one failure (task, answer, feedback) for error analysis."""
        ...

    async def averify_task(
        self,
        task: Task,
        *,
        checker_answer: Answer | None,
        sandbox: SandboxProvider,
        checker_answers: Sequence[Answer] = (),
    ) -> Any:
        """Is the generated task sound? ``checker_answers`` are the ``n_checkers``
        independent answers (``checker_answer`` the first of them)."""
        ...

    async def averify_answer(self, task: Task, answer: Answer, *, sandbox: SandboxProvider) -> Any:
        """Grade a solver's answer to ``task``."""
        ...


class BaseDomain(Domain):
    """``Domain`` with the defaults; subclass it and write what is your own.

    Required: ``name``, ``generated_schema``, ``seed_tasks``, ``validate_task``,
    ``task_from_generated``, ``solve_messages``, ``generate_messages``,
    ``averify_task``, ``averify_answer``. Defaults: one JSON object of
    ``generated_schema`` from the generator; ``hidden_fields`` left out of what
    the checker sees, which is ``solve_messages`` under ``checker_prompt``; one
    checker; the reply stripped as the answer; a dedup key from the task's
    visible fields.
    """

    name = "base"
    max_difficulty = 5
    default_prompt = "Solve the task carefully and state your final answer clearly."
    n_checkers = 1
    checker_prompt = CHECKER_PROMPT
    hidden_fields: tuple[str, ...] = ()  # task fields that give the answer away

    def generated_format(self) -> ReplyFormat[BaseModel]:
        return json_format(self.generated_schema)

    def blind(self, task: Task) -> Task:
        """``task`` without ``hidden_fields``."""
        return {k: v for k, v in task.items() if k not in self.hidden_fields}

    def checker_messages(self, task: Task) -> list[BaseMessage]:
        return self.solve_messages(self.blind(task), self.checker_prompt)

    def parse_answer(self, task: Task, text: str) -> Answer:
        return text.strip()

    async def asolve(self, task: Task, system_prompt: str, ask: Ask) -> Answer:
        return self.parse_answer(task, await ask(self.solve_messages(task, system_prompt)))

    async def acheck(self, task: Task, ask: Ask) -> Answer:
        return self.parse_answer(task, await ask(self.checker_messages(task)))

    def dedup_key(self, task: Task) -> str:
        shown = {
            k: v
            for k, v in self.blind(task).items()
            if k not in ("id", "difficulty", "weakness", "provenance")
        }
        raw = json.dumps(shown, sort_keys=True, default=str).casefold()
        return hashlib.sha256(" ".join(raw.split()).encode("utf-8")).hexdigest()[:16]

    def describe_failure(self, failure: Mapping[str, Any]) -> str:
        task = failure.get("task") or {}
        verdict = failure.get("verdict") or {}
        shown = json.dumps(self.blind(task), default=str)[:1200]
        return (
            f"Task {task.get('id')} (weakness: {task.get('weakness') or 'unknown'}):\n{shown}\n"
            f"Solver's answer:\n{answer_text(failure.get('answer', ''))[:1200]}\n"
            f"Verifier feedback: {str(verdict.get('feedback', ''))[:800]}"
        )


def system_and_user(system: str, user: str) -> list[BaseMessage]:
    """The two-message conversation most domains send."""
    return [SystemMessage(content=system), HumanMessage(content=user)]
