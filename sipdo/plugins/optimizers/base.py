"""The ``Strategy`` seam: how the optimizer proposes prompts and keeps its candidate pool."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from sipdo.structured import ReplyFormat, StructuredResult

T = TypeVar("T", bound=BaseModel)


class StructuredCaller(Protocol):
    """The optimizer model, with robust structured output and usage accounting built in."""

    async def __call__(
        self, messages: Sequence[BaseMessage], schema: type[T] | ReplyFormat[T]
    ) -> StructuredResult[T]:
        """Never raises for bad output: a failed result carries the parse error. ``schema``
        is a pydantic model (a JSON reply) or a ``ReplyFormat`` of its own."""
        ...


@dataclass(frozen=True)
class Candidate:
    """A proposed prompt. ``notes`` is JSON-safe and kept with the attempt (e.g. the
    error analysis, so a refinement can reuse it)."""

    text: str
    rationale: str = ""
    parent_id: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Proposal:
    """Zero or more candidates; ``error`` says why there are none, ``raw`` holds the
    model reply that could not be used and ``notes`` what was worked out before it
    (both kept with the attempt, so the next refinement can reuse the notes)."""

    candidates: list[Candidate]
    error: str | None = None
    raw: str = ""
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProposalContext:
    """What a strategy sees when asked for candidates.

    ``failures`` are dicts ``{"task", "answer", "verdict"}``; ``solved`` are the
    tasks the current prompt solves (the no-regression set); ``attempts`` are this
    round's earlier attempts, each with ``prompt``, ``feedback`` (the textual
    reward), ``fixed``, ``broken`` and ``notes``; ``pool`` is the strategy's own
    JSON-safe candidate pool as it returned it last time.
    """

    prompt: str
    version_id: str
    failures: list[dict[str, Any]]
    solved: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    pool: list[dict[str, Any]]
    describe: Callable[[Mapping[str, Any]], str]
    llm: StructuredCaller


@runtime_checkable
class Strategy(Protocol):
    """An optimizer step plus a candidate pool (SIPDO now; ProTeGi, GEPA, E-SPL next).

    Invariants: the graph owns evaluation and the no-regression gate — a strategy
    only proposes, and learns the outcome through ``update_pool``. The pool is a
    JSON-safe list the graph checkpoints; a strategy keeps no other state between
    calls, so a resumed run behaves like an uninterrupted one.

    Error policy: unusable model output is data — ``propose`` returns a
    ``Proposal`` with no candidates and an ``error`` (recorded as a failed
    attempt). Only the system failing (model backend down) raises.
    """

    name: str

    async def propose(self, ctx: ProposalContext) -> Proposal:
        """Candidates that should fix ``ctx.failures`` without breaking ``ctx.solved``."""
        ...

    def update_pool(
        self, pool: list[dict[str, Any]], evaluated: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The new pool after a candidate was evaluated (``version_id``, ``text``,
        ``scores``, ``accepted``, ``parent_id``); must not mutate ``pool``."""
        ...
