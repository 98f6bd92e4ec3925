"""The ``Domain`` seam: what a task is, and how it is generated, solved and verified."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from sipdo.structured import ReplyFormat, json_format

if TYPE_CHECKING:
    from sipdo.sandbox import Sandbox

Task = dict[str, Any]
VerdictDict = dict[str, Any]


@runtime_checkable
class SandboxProvider(Protocol):
    """Hands out the run's sandbox, opening it on first use (so domains that never
    execute code never start one)."""

    async def get(self) -> Sandbox:
        """The sandbox to verify in; raises ``SandboxUnavailableError`` if none can start."""
        ...


@runtime_checkable
class Domain(Protocol):
    """A kind of task the loop can learn on (code first; QA and agent plans next).

    Invariants:

    - A task is a JSON-safe ``dict`` with a stable, content-derived ``"id"``, an
      int ``"difficulty"`` (1..``max_difficulty``) and a ``"weakness"`` string; it
      round-trips through the checkpointer unchanged.
    - Message builders and parsers are pure (no I/O); only the two ``averify_*``
      coroutines touch the sandbox.
    - A verdict is a JSON-safe dict with at least ``passed`` (bool), ``score``
      (0..1) and ``feedback`` (text an optimizer can act on).

    Error policy: a bad generated task or a wrong answer is *data* —
    ``task_from_generated`` raises ``ValueError`` (the graph rejects the task
    with that message) and the verifiers return a failing verdict. Only the
    system failing raises: ``SandboxError`` / ``VerificationError`` from the
    verifiers, ``ConfigurationError`` from ``validate_task`` for bad user input.
    """

    name: str
    max_difficulty: int
    generated_schema: type[BaseModel]

    def seed_tasks(self) -> list[Task]:
        """The shipped seed tasks, validated."""
        ...

    def validate_task(self, data: Mapping[str, Any]) -> Task:
        """A user-supplied task in normal form; ``ConfigurationError`` says what is wrong."""
        ...

    def generated_format(self) -> ReplyFormat[BaseModel]:
        """How the generator's reply is asked for and parsed; by default one JSON object
        of ``generated_schema`` (a domain may read another layout, see ``ReplyFormat``)."""
        return json_format(self.generated_schema)

    def task_from_generated(
        self, generated: BaseModel, *, difficulty: int, weakness: str, provenance: Mapping[str, Any]
    ) -> Task:
        """Turn the generator's structured output into a task; ``ValueError`` if unusable."""
        ...

    def dedup_key(self, task: Task) -> str:
        """Two tasks with the same key are duplicates (normalized prompt + entry point)."""
        ...

    def solve_messages(self, task: Task, system_prompt: str) -> list[BaseMessage]:
        """Messages asking a solver to answer ``task`` (never shows the reference answer)."""
        ...

    def parse_answer(self, task: Task, text: str) -> str:
        """The answer inside a solver's reply (for code: the module source)."""
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
        ``rejections`` are the verifier's reasons for recently rejected tasks."""
        ...

    def describe_failure(self, failure: Mapping[str, Any]) -> str:
        """A short text of one failure (task, answer, feedback) for error analysis."""
        ...

    async def averify_task(
        self, task: Task, *, checker_answer: str | None, sandbox: SandboxProvider
    ) -> VerdictDict:
        """Is the generated task sound (reference passes strong tests, checker agrees)?"""
        ...

    async def averify_answer(
        self, task: Task, answer: str, *, sandbox: SandboxProvider
    ) -> VerdictDict:
        """Grade a solver's answer to ``task``."""
        ...
