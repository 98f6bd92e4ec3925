"""Pure routing functions and the no-regression gate."""

from __future__ import annotations

from typing import Any

import pytest

from sipdo.graph import routing
from sipdo.graph.budget import Budget

B = Budget(iterations=2, max_refinements=2)
F = [{"task": {"id": "t1"}, "answer": "", "verdict": {"passed": False}}]


def st(**kw: Any) -> dict[str, Any]:
    return {"budget_used": {}, "iteration": 1, "difficulty": 2, "failures": [], **kw}


@pytest.mark.parametrize(
    ("fixed", "broken", "ok"),
    [(["a"], [], True), ([], [], False), (["a", "b"], ["c"], False), ([], ["c"], False)],
)
def test_gate(fixed: list[str], broken: list[str], ok: bool) -> None:
    assert routing.passes_gate(fixed, broken) is ok


def test_stop_reasons() -> None:
    assert routing.stop_reason(st(), B, 5) is None
    assert routing.stop_reason(st(iteration=2), B, 5) == "iterations"
    assert routing.stop_reason(st(difficulty=5), B, 5) == "no_errors"
    assert routing.stop_reason(st(difficulty=5, failures=F), B, 5) is None
    assert routing.stop_reason(st(iteration=0, difficulty=5), B, 5) is None
    spent = st(budget_used={"model_calls": {"learner": 9}})
    assert routing.stop_reason(spent, Budget(model_calls=9), 5) == "budget:model_calls"


def test_learner_routes() -> None:
    assert routing.after_learner(st(phase="seed", failures=F), B, 5) == "generator"
    assert routing.after_learner(st(phase="accepted", failures=F), B, 5) == "optimizer"
    assert routing.after_learner(st(phase="accepted"), B, 5) == "generator"
    assert routing.after_learner(st(phase="accepted", iteration=2), B, 5) == "finish"


def test_task_pipeline_routes() -> None:
    assert routing.after_generator(st(new_tasks=[{"id": "x"}]), B, 5) == "checker"
    assert routing.after_generator(st(failures=F), B, 5) == "optimizer"
    assert routing.after_generator(st(), B, 5) == "generator"
    assert routing.after_checker(st(), B, 5) == "verifier"
    assert routing.after_verifier(st(pending=[{"id": "x"}]), B, 5) == "learner"
    assert routing.after_verifier(st(failures=F), B, 5) == "optimizer"
    assert routing.after_verifier(st(iteration=2), B, 5) == "finish"


def test_optimizer_routes() -> None:
    assert routing.after_optimizer(st(pending_candidate={"x": 1}), B, 5) == "approve"
    assert routing.after_optimizer(st(attempts=[{}], failures=F), B, 5) == "optimizer"
    assert routing.after_optimizer(st(attempts=[{}, {}], failures=F), B, 5) == "generator"
    assert routing.after_approve(st(last_approved=True, iteration=2), B, 5) == "finish"
    assert routing.after_approve(st(last_approved=False, attempts=[{}]), B, 5) == "optimizer"
    over = st(budget_used={"sandbox_seconds": 3.0}, attempts=[{}])
    assert routing.after_optimizer(over, Budget(sandbox_seconds=1.0), 5) == "finish"
