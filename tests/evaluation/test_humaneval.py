"""The HumanEval conversion: every canonical solution passes its converted task."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sipdo.errors import ConfigurationError
from sipdo.evaluation import agrade, holdout_tasks, load_benchmark, load_tasks, select
from sipdo.evaluation.grading import base_flow
from sipdo.sandbox import Sandbox
from sipdo.verifiers.runs import adrive


@pytest.mark.slow
def test_every_canonical_solution_passes_its_tests(process_sandbox: Sandbox) -> None:
    tasks = load_benchmark("humaneval")
    assert len(tasks) == 164
    assert tasks[0].id == "HumanEval-0"

    async def grade_all() -> list[tuple[str, bool, str]]:
        async def one(task):  # type: ignore[no-untyped-def]
            result = await adrive(base_flow(task, task.reference_solution), process_sandbox)
            return task.id, result.passed, result.detail

        return list(await asyncio.gather(*(one(t) for t in tasks)))

    failed = [(tid, detail) for tid, ok, detail in asyncio.run(grade_all()) if not ok]
    assert failed == []


def test_a_wrong_answer_fails_the_base_tests(process_sandbox: Sandbox) -> None:
    [task] = load_benchmark("humaneval", limit=1)
    wrong = task.prompt + "    return False\n"
    result = asyncio.run(adrive(base_flow(task, wrong), process_sandbox))
    assert not result.passed
    assert "failed" in result.detail


def test_canonical_solutions_pass_full_verification_too(process_sandbox: Sandbox) -> None:
    tasks = select(
        load_benchmark("humaneval"), subset=["HumanEval/0", "HumanEval/32", "HumanEval-38"]
    )
    grades = [asyncio.run(agrade(t, t.reference_solution, sandbox=process_sandbox)) for t in tasks]
    assert [(g.status, g.base_passed, g.full_passed) for g in grades] == [
        ("graded", True, True)
    ] * 3


def test_holdout_specs() -> None:
    assert [t.id for t in holdout_tasks("humaneval:3")] == [
        "HumanEval-0",
        "HumanEval-1",
        "HumanEval-2",
    ]
    assert len(holdout_tasks("HumanEval")) == 164


def test_bad_task_sets_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="neither a benchmark"):
        holdout_tasks("mbpp:3")
    with pytest.raises(ConfigurationError, match="expected NAME:N"):
        holdout_tasks("humaneval:all")
    tasks = load_benchmark("humaneval", limit=3)
    with pytest.raises(ConfigurationError, match="1 subset id"):
        select(tasks, subset=["HumanEval/1", "HumanEval/77"])
    bad = tmp_path / "tasks.jsonl"
    bad.write_text(tasks[0].model_dump_json() + "\n{broken\n", "utf-8")
    with pytest.raises(ConfigurationError, match="line 2"):
        load_tasks(bad)
