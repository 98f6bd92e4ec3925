"""The ``Strategy`` seam: an optimizer step written as an I/O-free flow.

A strategy's ``step(view)`` returns a generator (the shape of
``sipdo.verifiers.runs``): it yields a batch of requests, receives their
results in the same order, and finally returns a ``Selection``. Two requests
exist:

- ``Ask(messages, schema)`` — a call to the optimizer model; the result is a
  ``StructuredResult`` (never an exception for bad output);
- ``Evaluate(candidates, task_ids, samples)`` — score candidates on verified
  tasks; new candidates (``NewCandidate``) are registered with their lineage on
  first sight; the result maps candidate id -> task id -> cell. Cells already in
  the score table are not paid for again.

The graph drives the flow, runs a batch's requests concurrently, counts every
call and sandbox-second against the budget, records everything, checkpoints
after each batch and — when the flow ends — applies the promotion policy to the
selected candidate. After a resume the flow is re-created from the same
``OptimizerView`` and the recorded results are replayed into it, so a strategy
must be deterministic given its view and results (use ``view.rng()``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from sipdo.plugins.optimizers.candidates import DEMONSTRATIONS, NewCandidate, demonstration_ids
from sipdo.plugins.optimizers.demos import DemoSettings, propose
from sipdo.plugins.optimizers.scores import Table
from sipdo.structured import ReplyFormat


@dataclass(frozen=True)
class Ask:
    """A request to the optimizer model: a pydantic schema (JSON reply) or a ``ReplyFormat``."""

    messages: Sequence[BaseMessage]
    schema: type[BaseModel] | ReplyFormat[Any]


@dataclass(frozen=True)
class Evaluate:
    """Score ``candidates`` (new ones or known ids) on ``task_ids`` with ``samples`` each."""

    candidates: Sequence[NewCandidate | str]
    task_ids: Sequence[str]
    samples: int = 1


Request = Ask | Evaluate


@dataclass(frozen=True)
class Selection:
    """How a step ended: the candidate put forward for promotion (or None), the
    strategy's new JSON state, and words for the history. ``error`` says why a
    step proposed nothing; ``raw`` keeps an unusable model reply."""

    candidate: str | None
    state: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    error: str | None = None
    raw: str = ""
    notes: Mapping[str, Any] = field(default_factory=dict)


StrategyFlow = Generator[list[Request], list[Any], Selection]


@dataclass(frozen=True)
class OptimizerView:
    """What a strategy sees at the start of a step (frozen: a replay sees the same).

    ``data`` is the JSON snapshot the graph stores with the step: ``incumbent``
    (candidate id), ``candidates`` (id -> ``CandidateState``), ``score_table``,
    ``tasks`` (verified training tasks by id), ``decisions`` (every promotion
    decision so far), ``attempts`` (this iteration's earlier steps, each with the
    textual reward in ``feedback`` and the step's ``notes``), ``strategy_state``
    (what the strategy returned last), ``iteration``, ``step``, ``seed``,
    ``gate`` (the promotion policy's name), ``budget_left`` (calls per role
    or ``None`` when unlimited), ``demonstrations`` (the pool of verified
    demonstrations, by id), ``demo_limit`` and ``demo_tokens`` (how many a
    candidate may carry and their token budget; a limit of 0: none).
    ``describe`` renders one failure for a prompt.
    """

    data: Mapping[str, Any]
    describe: Callable[[Mapping[str, Any]], str]

    @property
    def incumbent(self) -> str:
        return str(self.data["incumbent"])

    @property
    def candidates(self) -> Mapping[str, Mapping[str, Any]]:
        return self.data.get("candidates", {})  # type: ignore[no-any-return]

    @property
    def table(self) -> Table:
        return self.data.get("score_table", {})  # type: ignore[no-any-return]

    @property
    def tasks(self) -> Mapping[str, Mapping[str, Any]]:
        return self.data.get("tasks", {})  # type: ignore[no-any-return]

    @property
    def task_ids(self) -> list[str]:
        return list(self.tasks)

    @property
    def attempts(self) -> list[Mapping[str, Any]]:
        return list(self.data.get("attempts", []))

    @property
    def decisions(self) -> list[Mapping[str, Any]]:
        return list(self.data.get("decisions", []))

    @property
    def state(self) -> Mapping[str, Any]:
        return self.data.get("strategy_state", {})  # type: ignore[no-any-return]

    def candidate(self, cid: str) -> Mapping[str, Any]:
        return self.candidates[cid]

    def components(self, cid: str) -> dict[str, str]:
        return dict(self.candidates[cid]["components"])

    def failures(self, cid: str | None = None, task_ids: Sequence[str] | None = None) -> list[str]:
        """Tasks (of ``task_ids``, default all verified) on which ``cid`` (default: the
        incumbent) has a failing cell."""
        row = self.table.get(cid or self.incumbent, {})
        return [t for t in (task_ids or self.task_ids) if t in row and not row[t]["passed"]]

    def solved(self, cid: str | None = None) -> list[str]:
        row = self.table.get(cid or self.incumbent, {})
        return [t for t in self.task_ids if t in row and row[t]["passed"]]

    def failure(self, task_id: str, cid: str | None = None) -> dict[str, Any]:
        """``{"task", "answer", "verdict"}`` of ``cid`` on ``task_id`` (its trace)."""
        cell = self.table.get(cid or self.incumbent, {}).get(task_id, {})
        verdict = {"passed": bool(cell.get("passed")), "feedback": cell.get("feedback", "")}
        return {"task": self.tasks[task_id], "answer": cell.get("answer", ""), "verdict": verdict}

    def describe_failures(
        self, task_ids: Sequence[str], cid: str | None = None, *, limit: int = 4
    ) -> str:
        """The failures as text for an optimizer prompt, at most ``limit`` shown."""
        shown = [self.describe(self.failure(t, cid)) for t in task_ids[:limit]]
        more = len(task_ids) - len(shown)
        return "\n\n".join(shown) + (f"\n\n(+{more} more failures)" if more > 0 else "")

    @property
    def demo_settings(self) -> DemoSettings:
        return DemoSettings(
            int(self.data.get("demo_limit", 0)),
            int(self.data.get("demo_tokens", DemoSettings().token_budget)),
        )

    def demonstrations_candidate(self, parent: str | None = None) -> NewCandidate | None:
        """``parent`` (default: the incumbent) with one demonstration added, swapped or
        removed (``sipdo.plugins.optimizers.demos.propose``), preferring demonstrations
        of the weaknesses it fails on; None when demonstrations are off or nothing changes."""
        parent = parent or self.incumbent
        components = self.components(parent)
        prefer = {str(self.tasks[t].get("weakness", "")) for t in self.failures(parent)}
        proposed = propose(
            self.data.get("demonstrations", {}),
            self.tasks,
            demonstration_ids(components),
            settings=self.demo_settings,
            prefer=prefer - {""},
        )
        if proposed is None:
            return None
        ids, operator = proposed
        shown = {**components, DEMONSTRATIONS: "\n".join(ids)}
        return NewCandidate(shown, [parent], operator, f"{operator}: {', '.join(ids) or 'none'}")

    def rng(self) -> random.Random:
        """A random generator seeded by the run and step: the same on a replay."""
        return random.Random(
            f"{self.data.get('seed', 0)}:{self.data.get('iteration', 0)}:{self.data.get('step', 0)}"
        )


@runtime_checkable
class Strategy(Protocol):
    """An optimizer: how candidates are proposed, evaluated and selected.

    Invariants: ``step`` is deterministic given its view and the results it
    receives (randomness only from ``view.rng()``); it keeps no state between
    steps except what it returns in ``Selection.state`` (JSON-safe); it decides
    what to evaluate, while the graph owns executing, accounting, recording and
    the promotion policy — a strategy can never promote a candidate itself.

    Error policy: unusable model output is data — end with a ``Selection`` whose
    ``candidate`` is None and ``error`` says why (recorded as a failed step).
    Only the system failing (model backend down) raises.
    """

    name: str

    def step(self, view: OptimizerView) -> StrategyFlow:
        """One optimizer step (one refinement, whatever the beam or population size)."""
        ...

    def estimate_calls(self, n_tasks: int, n_failures: int) -> Mapping[str, int]:
        """Roughly how many model calls one step makes, per role (for ``sipdo run``'s
        estimate before it starts)."""
        ...
