"""Small datasets the dataset-layer tests write: sound, weak and broken tasks, samples."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CLAMP_REF = (
    "def clamp_sum(xs: list[int], lo: int, hi: int) -> int:\n"
    "    total = 0\n"
    "    for x in xs:\n"
    "        if x < lo:\n"
    "            total += lo\n"
    "        elif x > hi:\n"
    "            total += hi\n"
    "        else:\n"
    "            total += x\n"
    "    return total\n"
)
CLAMP_TESTS = (
    "from solution import clamp_sum\n\n"
    "def test_inside():\n    assert clamp_sum([3, 4], 0, 10) == 7\n\n"
    "def test_clamped():\n    assert clamp_sum([-5, 5, 50], 0, 10) == 15\n\n"
    "def test_bounds_exact():\n    assert clamp_sum([0, 10], 0, 10) == 10\n\n"
    "def test_empty():\n    assert clamp_sum([], 1, 2) == 0\n"
)


def clamp(task_id: str, **change: str) -> dict[str, Any]:
    """The clamp task as a sipdo row, with fields changed."""
    return {
        "task_id": task_id,
        "prompt": "def clamp_sum(xs: list[int], lo: int, hi: int) -> int: ...\n",
        "entry_point": "clamp_sum",
        "reference_solution": CLAMP_REF,
        "tests": CLAMP_TESTS,
        **change,
    }


SOUND = clamp("sound")
WRONG_REFERENCE = clamp(
    "wrong-ref", reference_solution=CLAMP_REF.replace("total += hi", "total += lo")
)
WEAK = clamp(
    "weak",
    tests="from solution import clamp_sum\n\ndef test():\n    assert clamp_sum([], 0, 9) == 0\n",
    input_strategy=(
        "strategy = st.tuples(st.lists(st.integers(-20, 20)), st.just(0), st.just(10))"
    ),
)

TWICE_REF = "def twice(x: int) -> int:\n    return 2 * x\n"
TWICE = {
    "task_id": "twice",
    "prompt": "def twice(x: int) -> int:\n    '''Double x.'''\n",
    "entry_point": "twice",
    "reference_solution": TWICE_REF,
    "tests": (
        "from solution import twice\n\n"
        "def test_twice():\n    assert twice(2) == 4\n    assert twice(-3) == -6\n"
    ),
}


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    """Rows as JSONL; a ``str`` row is written as the raw line."""
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def stable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what may differ between runs (timings, attempts)."""
    return {k: v for k, v in record.items() if k not in ("timings", "attempts")}
