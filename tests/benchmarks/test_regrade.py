"""``benchmarks/regrade.py``: stored held-out answers graded again under today's rules.

A store holds an initial prompt's eval and a candidate's, with the verdicts of older
rules (both stored as failed). Graded again, the candidate's answer that checks a
precondition beyond the tests' range now passes, so the candidate goes from a tie
with the initial prompt to one task ahead; with the rule off nothing moves.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sipdo.evaluation.benchmarks import load_benchmark
from sipdo.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import regrade  # noqa: E402

TASK = "HumanEval-44"
PLAIN = load_benchmark("humaneval")[44]
VALIDATES = (
    "def change_base(x: int, base: int):\n"
    "    if not 2 <= base <= 9:\n"
    "        raise ValueError('base must be 2 to 9')\n"
    "    out = ''\n"
    "    while x > 0:\n"
    "        out = str(x % base) + out\n"
    "        x //= base\n"
    "    return out\n"
)


def _store(path: Path) -> None:
    with RunStore(f"sqlite:///{path}") as store:
        for eval_id, version, answer in [
            ("eval-init", None, PLAIN.reference_solution.replace("return ret", "return ret[::-1]")),
            ("eval-cand", "pv-1", VALIDATES),
        ]:
            store.create_eval(
                eval_id,
                prompt="p",
                model="local:test",
                benchmark="humaneval",
                config={},
                source_version=version,
            )
            store.record_eval_result(
                eval_id,
                TASK,
                0,
                status="graded",
                answer=answer,
                base_passed=version is not None,
                full_passed=False,
                feedback="stored under older rules",
            )


def test_a_candidate_that_checks_the_base_moves_ahead(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert PLAIN.id == TASK
    db = tmp_path / "store.db"
    _store(db)
    assert regrade.main([str(db), "--off"]) == 0
    out = capsys.readouterr().out
    [row] = [line for line in out.splitlines() if "pv-1" in line]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:] == ["1", "0", "1 (rule off: 0)", "+0 (+0.0 pts)", "+1 (+100.0 pts)"]
    assert "initial prompt, store (local:test): 0/1 stored, 0/1 now" in out
