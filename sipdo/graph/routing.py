"""Pure routing: functions of the state (and the fixed budget) naming the next node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from sipdo.graph.budget import Budget
from sipdo.graph.state import failures_of

Next = Literal[
    "generator", "checker", "verifier", "learner", "optimizer", "promote", "approve", "finish"
]


def stop_reason(state: Mapping[str, Any], budget: Budget, max_difficulty: int) -> str | None:
    """Why the run should stop now, or None to go on.

    ``budget:<name>`` when a budget is spent; a node's ``stop_requested`` (e.g.
    ``holdout_drop``); ``no_errors`` when no failure remains
    at the top difficulty; ``iterations`` when the last iteration is done.
    """
    spent = budget.exceeded(state.get("budget_used", {}))
    if spent:
        return spent
    if state.get("stop_requested"):
        return str(state["stop_requested"])
    iteration = int(state.get("iteration", 0))
    if iteration >= 1 and not failures_of(state) and state.get("difficulty", 1) >= max_difficulty:
        return "no_errors"
    if iteration >= budget.iterations:
        return "iterations"
    return None


def next_iteration(state: Mapping[str, Any], budget: Budget, max_difficulty: int) -> Next:
    return "finish" if stop_reason(state, budget, max_difficulty) else "generator"


def _work_or_next(state: Mapping[str, Any], budget: Budget, max_difficulty: int) -> Next:
    if failures_of(state):
        return "optimizer"
    return next_iteration(state, budget, max_difficulty)


def _spent(state: Mapping[str, Any], budget: Budget) -> bool:
    return budget.exceeded(state.get("budget_used", {})) is not None


def after_learner(state: Mapping[str, Any], budget: Budget, max_difficulty: int) -> Next:
    if _spent(state, budget):
        return "finish"
    if state.get("phase") == "seed":
        return "generator"
    return _work_or_next(state, budget, max_difficulty)


def after_generator(state: Mapping[str, Any], budget: Budget, max_difficulty: int) -> Next:
    if _spent(state, budget):
        return "finish"
    if state.get("new_tasks"):
        return "checker"
    return _work_or_next(state, budget, max_difficulty)


def after_checker(state: Mapping[str, Any], budget: Budget, max_difficulty: int) -> Next:
    return "finish" if _spent(state, budget) else "verifier"


def after_verifier(state: Mapping[str, Any], budget: Budget, max_difficulty: int) -> Next:
    if _spent(state, budget):
        return "finish"
    if state.get("pending"):
        return "learner"
    return _work_or_next(state, budget, max_difficulty)


def _refine_or_next(state: Mapping[str, Any], budget: Budget, max_difficulty: int) -> Next:
    if _spent(state, budget):
        return "finish"
    if int(state.get("step", 0)) < budget.max_refinements and failures_of(state):
        return "optimizer"
    return next_iteration(state, budget, max_difficulty)


def after_optimizer(state: Mapping[str, Any], budget: Budget, max_difficulty: int) -> Next:
    """Another batch of the strategy's step, or the decision once the step has ended."""
    flow = state.get("flow") or {}
    if "selection" in flow:
        return "promote"
    return "finish" if _spent(state, budget) else "optimizer"


def after_promote(state: Mapping[str, Any], budget: Budget, max_difficulty: int) -> Next:
    if state.get("pending_candidate"):
        return "approve"
    return _refine_or_next(state, budget, max_difficulty)


def after_approve(state: Mapping[str, Any], budget: Budget, max_difficulty: int) -> Next:
    if state.get("last_approved"):
        return next_iteration(state, budget, max_difficulty)
    return _refine_or_next(state, budget, max_difficulty)
