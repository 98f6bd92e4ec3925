"""The state schema of the SIPDO graph, in one place.

Everything is plain JSON (str, int, float, bool, list, dict) so any LangGraph
checkpointer can persist it. Tasks are domain task dicts (``"id"`` always set);
a *failure* is ``{"task", "answer", "verdict"}``; a verdict is a dict with
``passed``, ``score``, ``feedback``.
"""

from __future__ import annotations

from typing import Any, Required, TypedDict


class InputState(TypedDict, total=False):
    """What a caller passes in; ``seed_tasks`` defaults to the domain's shipped seeds."""

    prompt: Required[str]
    seed_tasks: list[dict[str, Any]]


class OutputState(TypedDict, total=False):
    """What a run returns."""

    best_prompt: str
    accepted_tasks: list[dict[str, Any]]
    rejected_tasks: list[dict[str, Any]]  # each with "reason"
    history: list[dict[str, Any]]
    prompt_versions: list[dict[str, Any]]
    budget_used: dict[str, Any]
    stop_reason: str
    iteration: int
    difficulty: int


class SipdoState(InputState, OutputState, total=False):
    """The full working state of a run."""

    phase: str  # "seed": learner on seed tasks; "accepted": learner on new accepted tasks
    current_prompt: str
    version_id: str
    pending: list[dict[str, Any]]  # tasks the learner runs next
    new_tasks: list[dict[str, Any]]  # generated this iteration, not yet verified
    checker_answers: dict[str, str]  # task id -> checker's independent answer
    solved: list[dict[str, Any]]  # tasks the current prompt solves (no-regression set)
    failures: list[dict[str, Any]]  # unresolved failures of the current prompt
    seen_keys: dict[str, str]  # dedup key -> id of the first task with that key
    attempts: list[dict[str, Any]]  # this round's optimizer attempts
    pending_candidate: dict[str, Any] | None  # passed the gate, awaiting approval
    last_approved: bool
    pool: list[dict[str, Any]]  # the strategy's candidate pool
