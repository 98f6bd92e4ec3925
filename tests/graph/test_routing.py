"""Pure routing functions, tested as a table."""

from __future__ import annotations

from typing import Any

from sipdo.graph import routing
from sipdo.graph.budget import Budget

B = Budget(iterations=2, max_refinements=2)
# The incumbent "v" fails t1 (the failures are read from the score table).
F = {
    "verified_tasks": {"t1": {"id": "t1"}},
    "score_table": {"v": {"t1": {"passed": False, "passes": 0, "n": 1, "score": 0.0}}},
}


def st(failing: bool = False, **kw: Any) -> dict[str, Any]:
    base = {
        "budget_used": {},
        "iteration": 1,
        "difficulty": 2,
        "version_id": "v",
        "verified_tasks": {},
    }
    return {**base, **(F if failing else {}), **kw}


def test_stop_reasons() -> None:
    assert routing.stop_reason(st(), B, 5) is None
    assert routing.stop_reason(st(iteration=2), B, 5) == "iterations"
    assert routing.stop_reason(st(difficulty=5), B, 5) == "no_errors"
    assert routing.stop_reason(st(difficulty=5, failing=True), B, 5) is None
    assert routing.stop_reason(st(iteration=0, difficulty=5), B, 5) is None
    spent = st(budget_used={"model_calls": {"learner": 9}})
    assert routing.stop_reason(spent, Budget(model_calls=9), 5) == "budget:model_calls"


def test_learner_routes() -> None:
    assert routing.after_learner(st(phase="seed", failing=True), B, 5) == "generator"
    assert routing.after_learner(st(phase="accepted", failing=True), B, 5) == "optimizer"
    assert routing.after_learner(st(phase="accepted"), B, 5) == "generator"
    assert routing.after_learner(st(phase="accepted", iteration=2), B, 5) == "finish"


def test_task_pipeline_routes() -> None:
    assert routing.after_generator(st(new_tasks=[{"id": "x"}]), B, 5) == "checker"
    assert routing.after_generator(st(failing=True), B, 5) == "optimizer"
    assert routing.after_generator(st(), B, 5) == "generator"
    assert routing.after_checker(st(), B, 5) == "verifier"
    assert routing.after_verifier(st(pending=[{"id": "x"}]), B, 5) == "learner"
    assert routing.after_verifier(st(failing=True), B, 5) == "optimizer"
    assert routing.after_verifier(st(iteration=2), B, 5) == "finish"


def test_optimizer_routes() -> None:
    ended = {"step": 1, "journal": [], "selection": {"candidate": "c"}}
    assert routing.after_optimizer(st(flow=ended), B, 5) == "promote"
    assert routing.after_optimizer(st(flow={"step": 1, "journal": [[]]}), B, 5) == "optimizer"
    over = st(budget_used={"sandbox_seconds": 3.0}, flow={"step": 1, "journal": [[]]})
    assert routing.after_optimizer(over, Budget(sandbox_seconds=1.0), 5) == "finish"
    # a finished step is decided even when the budget ran out during it
    assert routing.after_optimizer({**over, "flow": ended}, Budget(sandbox_seconds=1.0), 5) == (
        "promote"
    )


def test_promotion_routes() -> None:
    assert routing.after_promote(st(pending_candidate={"id": "c"}), B, 5) == "approve"
    assert routing.after_promote(st(step=1, failing=True), B, 5) == "optimizer"
    assert routing.after_promote(st(step=2, failing=True), B, 5) == "generator"
    assert routing.after_promote(st(step=1), B, 5) == "generator"  # nothing left to fix
    assert routing.after_approve(st(last_approved=True, iteration=2), B, 5) == "finish"
    assert routing.after_approve(st(last_approved=False, step=1, failing=True), B, 5) == (
        "optimizer"
    )
    over = st(budget_used={"sandbox_seconds": 3.0}, step=1, failing=True)
    assert routing.after_promote(over, Budget(sandbox_seconds=1.0), 5) == "finish"
