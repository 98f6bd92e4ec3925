"""One grading service for every caller: the sandbox provider and the exception rules.

A wrong answer or an unsound task is data (a failing verdict); only the system
failing raises. What counts as which is decided here once, so the graph, the
prompt-model trainer and users' own scripts grade the same way:

- grading an answer: ``SandboxInputError`` (the answer cannot even be written
  into the sandbox) is a failing verdict; ``VerificationError`` means the *task*
  cannot be graded, a failing verdict marked ``task_error``;
- verifying a generated task: ``SandboxInputError``, ``VerificationError`` and
  ``ValueError`` (a task the domain cannot read) are a failing verdict, so the
  task is rejected with the reason;
- anything else (``SandboxUnavailableError``, a model backend down) propagates.

Verdicts leave here as JSON dicts (``Verdict.model_dump``), whatever the grader
returned, so they can go straight into graph state and the run store.

An answer is a string or JSON-safe structured data (``sipdo.answers``): both
grading calls run ``check_answer`` first, so a domain that made anything else
gets a ``PluginError`` naming the bad value.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

from sipdo.answers import Answer, answer_text, check_answer
from sipdo.errors import SandboxInputError, VerificationError

__all__ = [
    "Answer",
    "Grader",
    "LazySandbox",
    "SandboxProvider",
    "agrade_answer",
    "agrade_task",
    "answer_text",
    "check_answer",
    "failed",
    "verdict_dict",
]

if TYPE_CHECKING:
    from sipdo.sandbox import Sandbox


@runtime_checkable
class SandboxProvider(Protocol):
    """Hands out the sandbox to verify in, opening it on first use (so domains that
    never execute code never start one)."""

    async def get(self) -> Sandbox:
        """The sandbox to verify in; raises ``SandboxUnavailableError`` if none can start."""
        ...


class LazySandbox(SandboxProvider):
    """The given sandbox, or ``open_sandbox("auto")`` opened at first use.

    An opened sandbox is shared by every user of this provider (graph runs may
    overlap, e.g. under ``langgraph dev``) and closed when the provider is garbage
    collected or the interpreter exits; a given sandbox is the caller's to close.
    """

    def __init__(self, sandbox: Sandbox | None = None) -> None:
        self._given = sandbox
        self._opened: Sandbox | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._lock = threading.Lock()

    def _open(self) -> Sandbox:
        with self._lock:
            if self._opened is None:
                from sipdo.sandbox.factory import open_sandbox

                self._opened = open_sandbox("auto")
                self._finalizer = weakref.finalize(self, self._opened.close)
            return self._opened

    async def get(self) -> Sandbox:
        if self._given is not None:
            return self._given
        if self._opened is not None:
            return self._opened
        return await asyncio.to_thread(self._open)

    def close(self) -> None:
        """Close the sandbox now if this provider opened it (reopened on next use)."""
        with self._lock:
            finalizer, self._finalizer, self._opened = self._finalizer, None, None
        if finalizer is not None:
            finalizer()


class Grader(Protocol):
    """What the service grades with: a domain's two verification coroutines."""

    async def averify_task(
        self,
        task: dict[str, Any],
        *,
        checker_answer: Any,
        sandbox: SandboxProvider,
        checker_answers: Sequence[Any] = (),
    ) -> Any: ...

    async def averify_answer(
        self, task: dict[str, Any], answer: Any, *, sandbox: SandboxProvider
    ) -> Any: ...


def verdict_dict(verdict: Any) -> dict[str, Any]:
    """A verdict as JSON: a ``Verdict`` (or any pydantic model) dumped, a mapping copied."""
    if isinstance(verdict, BaseModel):
        return verdict.model_dump(mode="json")
    if isinstance(verdict, Mapping):
        return dict(verdict)
    raise VerificationError(f"a grader returned {type(verdict).__name__}, not a verdict")


def failed(feedback: str, **extra: Any) -> dict[str, Any]:
    """A failing verdict with ``feedback``."""
    return {"passed": False, "score": 0.0, "feedback": feedback, **extra}


async def agrade_task(
    grader: Grader,
    task: dict[str, Any],
    checker_answers: Sequence[Answer],
    *,
    sandbox: SandboxProvider,
) -> dict[str, Any]:
    """Is a generated task sound? The first checker answer goes as ``checker_answer``;
    all of them as ``checker_answers`` to a grader whose ``averify_task`` takes it
    (domains written before k-of-n checking do not)."""
    source = f"the {getattr(grader, 'name', type(grader).__name__)} domain"
    answers = [check_answer(a, source=source) for a in checker_answers if a is not None]
    extra = {"checker_answers": answers} if _takes(grader.averify_task, "checker_answers") else {}
    try:
        verdict = await grader.averify_task(
            task, checker_answer=answers[0] if answers else None, sandbox=sandbox, **extra
        )
    except (SandboxInputError, VerificationError, ValueError) as exc:
        return failed(f"task cannot be verified: {exc}")
    return verdict_dict(verdict)


def _takes(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


async def agrade_answer(
    grader: Grader, task: dict[str, Any], answer: Answer, *, sandbox: SandboxProvider
) -> dict[str, Any]:
    """Grade a solver's answer to a task (``check_answer`` first: a domain that made a
    non-JSON-safe answer raises ``PluginError``)."""
    source = f"the {getattr(grader, 'name', type(grader).__name__)} domain"
    answer = check_answer(answer, source=source)
    try:
        verdict = await grader.averify_answer(task, answer, sandbox=sandbox)
    except SandboxInputError as exc:
        return failed(f"answer cannot be run: {exc}")
    except VerificationError as exc:
        # The task itself is broken (e.g. a seed whose reference fails its tests).
        return failed(f"task cannot be graded: {exc}", task_error=True)
    return verdict_dict(verdict)
