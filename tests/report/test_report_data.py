"""What the report reads from a real run's store and checkpoint, and how it escapes it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sipdo.report import build_report, collect
from sipdo.report.heldout import heldout_points
from sipdo.report.render import plotly_js, script_json
from sipdo.store import RunStore
from tests.report import world
from tests.report.conftest import RecordedRun


@pytest.fixture(scope="module")
def checkpoint(hostile_run: RecordedRun) -> Path:
    return hostile_run.workdir / "runs.checkpoints.db"


@pytest.mark.slow  # a real `sipdo run` (the session's hostile story)
def test_collect_reads_lineage_tasks_costs_and_sandbox_time(
    hostile_run: RecordedRun, checkpoint: Path
) -> None:
    with RunStore(hostile_run.db_url) as store:
        data = collect(store, hostile_run.run_id, checkpoint=checkpoint)

    initial, *children = data.versions
    assert initial.parent_ids == ()
    assert initial.reason == "initial prompt"
    assert [v.promoted for v in children] == [True, False, True]
    rejected = children[1]
    assert "BREAK" in rejected.text
    assert rejected.policy == "strict"
    assert "no-regression gate" in rejected.reason
    assert rejected.graded > 0
    assert rejected.passed == 0
    assert data.best_version is children[2]
    assert world.HOSTILE in children[0].rationale

    statuses = {t.task_id: t.status for t in data.tasks}
    assert list(statuses.values()).count("accepted") == 2
    halve = next(
        t
        for t in data.tasks
        if "def halve(" in t.statement and t.status == "rejected" and t.task_id.startswith("task-")
    )
    assert halve.iteration == 3
    assert halve.difficulty == 4
    assert "AssertionError" in halve.reason
    assert world.HOSTILE in halve.reason
    assert any(name == "reference" and not ok for name, ok, _ in halve.checks)

    assert {c.role for c in data.costs} == {"learner", "generator", "checker", "optimizer"}
    assert all(c.calls > 0 for c in data.costs)
    assert data.sandbox_seconds is not None
    assert data.sandbox_seconds > 0
    assert data.requested_difficulty == {1: 2, 2: 3, 3: 4}
    assert data.heldout == ()


@pytest.mark.slow  # a real `sipdo run` (the session's hostile story)
def test_without_a_checkpoint_sandbox_time_is_not_recorded(hostile_run: RecordedRun) -> None:
    with RunStore(hostile_run.db_url) as store:
        page = build_report(store, hostile_run.run_id, checkpoint=Path("/nonexistent.db"))
    assert "Sandbox time: not recorded" in page
    assert "No held-out evaluation recorded" in page


@pytest.mark.slow  # a real `sipdo run` (the session's hostile story)
def test_the_page_carries_no_live_markup_from_the_models(
    hostile_run: RecordedRun, checkpoint: Path
) -> None:
    with RunStore(hostile_run.db_url) as store:
        page = build_report(store, hostile_run.run_id, checkpoint=checkpoint)
    page = page.replace(plotly_js(), "")  # what is left is sipdo's own markup and data
    assert page.count("<script") == 3
    assert page.count("</script>") == 3
    assert re.search(r"<[a-zA-Z][^<>]*\son[a-z]+\s*=", page) is None  # no event handler
    assert "<img" not in page
    assert "<svg onload" not in page
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned=" in page  # shown, escaped


def test_script_json_cannot_close_its_script_element() -> None:
    text = script_json({"a": "</script><script>x()</script>", "b": "\u2028&"})
    assert "<" not in text
    assert ">" not in text
    assert "&" not in text
    assert "\u2028" not in text


def test_heldout_points_come_from_the_graph_history_only_when_recorded() -> None:
    assert heldout_points(object(), "r", None) == []
    values = {
        "history": [
            {"kind": "learner", "iteration": 0, "version_id": "v0"},
            {"kind": "holdout", "iteration": 0, "version_id": "v0", "passed": 3, "total": 10},
            {"kind": "holdout", "iteration": 2, "version_id": "v2", "pass_at_1": 0.5},
        ]
    }
    points = heldout_points(object(), "r", values)
    assert [(p.version_id, p.score, p.source) for p in points] == [
        ("v0", 0.3, "checkpoint"),
        ("v2", 0.5, "checkpoint"),
    ]


def test_heldout_points_keep_both_gradings_and_place_late_evals_by_version() -> None:
    values = {
        "history": [
            {
                "kind": "holdout",
                "iteration": 1,
                "version_id": "v1",
                "passed": 2,
                "total": 4,
                "pass_at_1": 0.5,
                "base_pass_at_1": 0.75,
            },
            {"kind": "holdout", "version_id": "v3", "passed": 1, "total": 4},
        ]
    }
    points = heldout_points(object(), "r", values, {"v1": 1, "v3": 2})
    assert [(p.version_id, p.iteration) for p in points] == [("v1", 1), ("v3", 2)]
    assert points[0].base_score == 0.75
    assert points[1].score == 0.25
    assert points[1].base_score is None
