"""The eval tables of the run store: idempotent writes, reads, retry wrapping.

On every store: a real SQLite file and a real PostgreSQL database (the store
suite's fixtures).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sipdo.errors import RunNotFoundError
from sipdo.report.heldout import heldout_points
from sipdo.store import RunStore
from sipdo.store.evals import EVAL_RETRIED
from tests.store.conftest import fresh_postgres, postgres_url, store_url

__all__ = ["fresh_postgres", "postgres_url", "store_url"]  # fixtures of the store suite


def test_eval_rows_round_trip_and_repeat_idempotently(store_url: str) -> None:
    url = store_url
    with RunStore(url) as store:
        store.create_eval(
            "e1",
            prompt="P",
            model="m",
            benchmark="humaneval:2",
            config={"seed": 0},
            source_run_id="run-1",
            source_version="v2",
        )
        for _ in range(2):  # a resumed eval repeats its writes
            store.record_eval_result(
                "e1",
                "HumanEval-0",
                0,
                status="graded",
                answer="a",
                base_passed=True,
                full_passed=False,
                feedback="wrong on 1 input",
                data={"calls": 1},
            )
        store.record_eval_result(
            "e1",
            "HumanEval-1",
            0,
            status="no_code",
            answer="",
            base_passed=False,
            full_passed=False,
            feedback="no code",
        )
        store.create_eval("e1", prompt="P", model="m", benchmark="x", config={"extra": 1})
        store.finish_eval("e1", "finished", {"pass_at_k": {"full": {"1": 0.0}}})
    with RunStore(url) as store:  # reopened: everything was committed
        record = store.get_eval("e1")
        assert record.status == "finished"
        assert record.results == 2
        assert record.config == {"seed": 0, "extra": 1}
        assert record.benchmark == "humaneval:2"
        assert record.summary == {"pass_at_k": {"full": {"1": 0.0}}}
        results = store.eval_results("e1")
        assert [(r.task_id, r.status, r.base_passed, r.full_passed) for r in results] == [
            ("HumanEval-0", "graded", True, False),
            ("HumanEval-1", "no_code", False, False),
        ]
        assert results[0].as_json()["data"] == {"calls": 1}
        assert [e.eval_id for e in store.list_evals(source_run_id="run-1")] == ["e1"]
        assert store.list_evals(source_run_id="other") == []
        assert store.heldout_curve("run-1") == []  # no summary with counts yet
        store.finish_eval(
            "e1",
            "finished",
            {"tasks": 2, "passed": {"full": 1}, "pass_at_k": {"full": {"1": 0.5}, "base": {}}},
        )
        [point] = store.heldout_curve("run-1")
        assert point["version_id"] == "v2"
        assert (point["passed"], point["total"], point["pass_at_1"]) == (1, 2, 0.5)
        # what `sipdo report` reads back
        [shown] = heldout_points(store, "run-1", None)
        assert (shown.version_id, shown.score, shown.source) == ("v2", 0.5, "run store")
        store.delete_eval("e1")
        with pytest.raises(RunNotFoundError):
            store.get_eval("e1")


def test_unknown_eval_is_a_clear_error(tmp_path: Path) -> None:
    with (
        RunStore(f"sqlite:///{tmp_path / 'runs.db'}") as store,
        pytest.raises(RunNotFoundError, match="no eval run 'nope'"),
    ):
        store.record_eval_result(
            "nope",
            "t",
            0,
            status="graded",
            answer="",
            base_passed=False,
            full_passed=False,
            feedback="",
        )


def test_every_eval_call_goes_through_the_retry_policy() -> None:
    for name in EVAL_RETRIED:
        assert hasattr(getattr(RunStore, name), "__wrapped__"), name
