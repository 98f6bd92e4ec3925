"""The shipped code training set (``examples/code_train.jsonl``): enough valid,
original tasks for the promotion gate, none of them a held-out HumanEval problem,
and every reference passing its own tests."""

from __future__ import annotations

import json
import re
import sys
import types
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sipdo.evaluation import load_benchmark
from sipdo.plugins.domains.code.domain import CodeDomain
from sipdo.trprompt.hygiene import HeldOut
from sipdo.verifiers.contract import check_precondition_source

TRAIN_FILE = Path(__file__).resolve().parents[2] / "examples" / "code_train.jsonl"


def _rows() -> list[dict[str, Any]]:
    text = TRAIN_FILE.read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


ROWS = _rows()


def _norm(line: str) -> str:
    return re.sub(r"\s+", " ", line).strip().lower()


def _first_line(prompt: str) -> str:
    return next((_norm(line) for line in prompt.splitlines() if line.strip()), "")


def _def_line(prompt: str, entry_point: str) -> str:
    pattern = re.compile(rf"\s*def\s+{re.escape(entry_point)}\s*\(")
    return next((_norm(line) for line in prompt.splitlines() if pattern.match(line)), "")


def test_enough_tasks_across_difficulties() -> None:
    assert len(ROWS) >= 40
    levels = Counter(row["difficulty"] for row in ROWS)
    assert set(levels) == {1, 2, 3}
    assert min(levels.values()) >= 8


def test_every_task_is_a_valid_code_task() -> None:
    domain = CodeDomain()
    for row in ROWS:
        task = domain.validate_task(row)
        assert task["entry_point"] == row["entry_point"]
        assert task["weakness"].strip(), row["entry_point"]
        assert f"from solution import {row['entry_point']}" in row["tests"]
        assert _def_line(row["prompt"], row["entry_point"]), row["entry_point"]
        assert _def_line(row["reference_solution"], row["entry_point"]), row["entry_point"]


def test_written_preconditions_parse() -> None:
    with_contract = [row for row in ROWS if row.get("precondition")]
    assert with_contract
    for row in with_contract:
        assert check_precondition_source(row["precondition"], []) is None, row["entry_point"]


def test_entry_points_unique_and_not_the_seeds() -> None:
    names = [row["entry_point"] for row in ROWS]
    assert len(set(names)) == len(names), [n for n, k in Counter(names).items() if k > 1]
    domain = CodeDomain()
    seeds = domain.seed_tasks()
    assert seeds
    assert not {task["entry_point"] for task in seeds} & set(names)
    assert not {domain.dedup_key(task) for task in seeds} & {domain.dedup_key(r) for r in ROWS}


def test_no_task_is_a_humaneval_problem() -> None:
    problems = load_benchmark("humaneval")
    assert len(problems) == 164
    held_entries = {p.entry_point for p in problems}
    held_lines = {_first_line(p.prompt) for p in problems}
    held_lines |= {_def_line(p.prompt, p.entry_point) for p in problems} - {""}
    for row in ROWS:
        assert row["entry_point"] not in held_entries, row["entry_point"]
        assert _first_line(row["prompt"]) not in held_lines, row["entry_point"]
        assert _def_line(row["prompt"], row["entry_point"]) not in held_lines
    guard = HeldOut.humaneval()
    assert [(row["entry_point"], guard.match(row)) for row in ROWS if guard.match(row)] == []


@pytest.mark.parametrize("row", ROWS, ids=[row["entry_point"] for row in ROWS])
def test_reference_passes_its_own_tests(
    row: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    solution = types.ModuleType("solution")
    exec(compile(row["reference_solution"], "solution.py", "exec"), solution.__dict__)
    monkeypatch.setitem(sys.modules, "solution", solution)
    namespace: dict[str, Any] = {"__name__": "test_task"}
    exec(compile(row["tests"], "test_task.py", "exec"), namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_") and callable(fn)]
    assert len(tests) >= 3, row["entry_point"]
    for fn in tests:
        fn()
