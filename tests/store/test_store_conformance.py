"""RunStore conformance: the same tests on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import pytest

from sipdo.errors import ConfigurationError, RunNotFoundError, StoreError
from sipdo.store import RunStore
from tests.store.runkit import (
    ADD,
    BAD,
    REV,
    RIGHT_ADD,
    V0,
    V1,
    V2,
    WRONG_ADD,
    populate,
    snapshot,
    verdict,
)


def test_create_get_and_list_runs(store: RunStore) -> None:
    store.create_run("a", {"x": 1}, "prompt a")
    store.create_run("b", {"y": 2}, "prompt b")
    run = store.get_run("a")
    assert (run.run_id, run.status, run.config, run.initial_prompt) == (
        "a",
        "running",
        {"x": 1},
        "prompt a",
    )
    assert run.finished_at is None
    assert run.best_prompt is None
    assert {r.run_id for r in store.list_runs()} == {"a", "b"}


def test_create_run_again_keeps_prompt_and_adds_config(store: RunStore) -> None:
    store.create_run("a", {"cli": {"model": "m"}}, "first")
    store.create_run("a", {"cli": {"model": "other"}, "graph": {"domain": "code"}}, "second")
    run = store.get_run("a")
    assert run.initial_prompt == "first"
    assert run.config == {"cli": {"model": "m"}, "graph": {"domain": "code"}}
    assert len(store.list_runs()) == 1


def test_unknown_run_raises_run_not_found_everywhere(store: RunStore) -> None:
    with pytest.raises(RunNotFoundError, match="nope"):
        store.get_run("nope")
    for call in (
        lambda: store.record_prompt_version("nope", "v0", "t", None, True, {}, "", 0),
        lambda: store.record_task("nope", ADD, "seed", "", None, 1, ""),
        lambda: store.record_attempt("nope", "add", "v0", "learner", "", False, 0.0, ""),
        lambda: store.record_usage("nope", "learner", "m", 1, 1, 1, 0.1),
        lambda: store.finish_run("nope", "completed", "", ""),
        lambda: store.prompt_lineage("nope"),
        lambda: store.tasks("nope"),
        lambda: store.attempts("nope"),
        lambda: store.usage("nope"),
        lambda: store.export("nope", "eval"),
    ):
        with pytest.raises(RunNotFoundError):
            call()
    assert store.list_runs() == []


def test_prompt_versions_store_unified_diffs_in_order(store: RunStore) -> None:
    populate(store)
    lineage = store.prompt_lineage("run-1")
    assert [p.version_id for p in lineage] == ["v0", "v2", "v1"]
    v0, v2, v1 = lineage
    assert v0.parent_id is None
    assert v0.diff.startswith("--- /dev/null\n+++ v0\n")
    assert "+You write Python functions.\n" in v0.diff
    assert v1.parent_id == "v0"
    assert v1.text == V1
    assert "+Handle empty inputs first.\n" in v1.diff
    assert "-You write Python functions.\n" not in v1.diff
    assert "-You write Python functions.\n" in v2.diff
    assert "+You write Python.\n" in v2.diff
    assert (v1.accepted, v2.accepted, v1.scores, v2.feedback) == (
        True,
        False,
        {"score": 0.5},
        "regressed: breaks add",
    )


def test_prompt_version_with_unknown_parent_is_refused(store: RunStore) -> None:
    store.create_run("r", {}, V0)
    with pytest.raises(StoreError, match="parent prompt 'ghost'"):
        store.record_prompt_version("r", "v1", V1, "ghost", True, {}, "", 1)
    assert store.prompt_lineage("r") == []


def test_prompt_version_scores_must_be_numbers(store: RunStore) -> None:
    store.create_run("r", {}, V0)
    with pytest.raises(ConfigurationError, match="scores"):
        store.record_prompt_version("r", "v0", V0, None, True, {"score": "high"}, "", 0)
    assert store.prompt_lineage("r") == []


def test_repeated_prompt_version_keeps_text_and_updates_verdict(store: RunStore) -> None:
    store.create_run("r", {}, V0)
    store.record_prompt_version("r", "v0", V0, None, True, {}, "", 0)
    store.record_prompt_version("r", "v1", V1, "v0", False, {"score": 0.1}, "first look", 1)
    store.record_prompt_version("r", "v1", V2, "v0", True, {"score": 0.9}, "second look", 1)
    lineage = store.prompt_lineage("r")
    assert len(lineage) == 2
    assert (lineage[1].text, lineage[1].accepted, lineage[1].scores, lineage[1].feedback) == (
        V1,
        True,
        {"score": 0.9},
        "second look",
    )


def test_task_upsert_appends_every_distinct_verdict(store: RunStore) -> None:
    store.create_run("r", {}, V0)
    store.record_task(
        "r", REV, "rejected", "checker disagrees", verdict(False, "disagree"), 2, "empty input"
    )
    store.record_task(
        "r", REV, "rejected", "checker disagrees", verdict(False, "disagree"), 2, "empty input"
    )
    store.record_task("r", REV, "accepted", "sound", verdict(True, "ok"), 3, "empty input")
    (task,) = store.tasks("r")
    assert (task.task_id, task.status, task.reason, task.difficulty, task.weakness) == (
        "rev",
        "accepted",
        "sound",
        3,
        "empty input",
    )
    assert task.task == REV
    assert [(v.status, v.reason, v.verdict) for v in task.verdicts] == [
        ("rejected", "checker disagrees", verdict(False, "disagree")),
        ("accepted", "sound", verdict(True, "ok")),
    ]


@pytest.mark.parametrize(
    ("task", "status", "match"),
    [
        ({"prompt": "no id"}, "seed", "'id'"),
        ({"id": ""}, "seed", "'id'"),
        ({"id": "t", "f": object()}, "seed", "JSON"),
        ({"id": "t"}, "maybe", "status"),
    ],
)
def test_bad_task_input_is_refused_and_nothing_recorded(
    store: RunStore, task: dict[str, object], status: str, match: str
) -> None:
    store.create_run("r", {}, V0)
    with pytest.raises(ConfigurationError, match=match):
        store.record_task("r", task, status, "", None, 1, "")  # type: ignore[arg-type]
    assert store.tasks("r") == []


def test_attempts_dedupe_and_derive_task_provenance(store: RunStore) -> None:
    populate(store)
    attempts = store.attempts("run-1")
    keys = [(a.task_id, a.prompt_version_id, a.role) for a in attempts]
    assert len(keys) == len(set(keys)) == 6
    tasks = {t.task_id: t for t in store.tasks("run-1")}
    assert (tasks["add"].first_failed_version, tasks["add"].first_solved_version) == ("v0", "v1")
    # The checker passed `rev` under v0: that is not the learner solving it.
    assert (tasks["rev"].first_failed_version, tasks["rev"].first_solved_version) == ("v0", None)
    assert (tasks["bad"].first_failed_version, tasks["bad"].first_solved_version) == (None, None)


def test_repeated_attempt_replaces_in_place(store: RunStore) -> None:
    store.create_run("r", {}, V0)
    store.record_attempt("r", "add", "v0", "learner", WRONG_ADD, False, 0.0, "wrong")
    store.record_attempt("r", "add", "v0", "checker", RIGHT_ADD, True, 1.0, "right")
    store.record_attempt("r", "add", "v0", "learner", RIGHT_ADD, True, 1.0, "now right")
    attempts = store.attempts("r")
    assert [(a.role, a.answer, a.passed, a.feedback) for a in attempts] == [
        ("learner", RIGHT_ADD, True, "now right"),
        ("checker", RIGHT_ADD, True, "right"),
    ]


def test_usage_dedupes_on_call_id_and_sums_per_role_and_model(store: RunStore) -> None:
    store.create_run("r", {}, V0)
    store.record_usage("r", "learner", "m1", 1, 10, 5, 0.5, call_id="x")
    store.record_usage("r", "learner", "m1", 1, 10, 5, 0.5, call_id="x")  # resumed repeat
    store.record_usage("r", "learner", "m1", 1, 7, 3, 0.25)
    store.record_usage("r", "learner", "m1", 1, 7, 3, 0.25)  # no call id: counted again
    store.record_usage("r", "checker", "m2", 2, 1, 1, 1.0, call_id="y")
    usage = {(u.role, u.model): u for u in store.usage("r")}
    assert set(usage) == {("learner", "m1"), ("checker", "m2")}
    learner = usage[("learner", "m1")]
    assert (learner.calls, learner.input_tokens, learner.output_tokens) == (3, 24, 11)
    assert learner.latency_s == pytest.approx(1.0)
    assert usage[("checker", "m2")].calls == 2


def test_negative_usage_is_refused(store: RunStore) -> None:
    store.create_run("r", {}, V0)
    with pytest.raises(ConfigurationError, match="negative"):
        store.record_usage("r", "learner", "m", 1, -5, 0, 0.0)
    assert store.usage("r") == []


def test_finish_run_and_summary_counts(store: RunStore) -> None:
    populate(store)
    run = store.get_run("run-1")
    assert (run.status, run.best_prompt, run.stop_reason) == ("completed", V1, "iterations")
    assert run.finished_at is not None
    assert run.finished_at >= run.created_at
    assert (run.prompt_versions, run.accepted_tasks, run.rejected_tasks) == (3, 1, 1)
    assert run.best_score == pytest.approx(0.5)


def test_mark_running_records_the_owner_and_reopens_a_finished_run(store: RunStore) -> None:
    populate(store)
    store.mark_running("run-1", {"host": "h", "pid": 42, "start": None})
    run = store.get_run("run-1")
    assert (run.status, run.stop_reason, run.finished_at) == ("running", None, None)
    assert run.config["owner"] == {"host": "h", "pid": 42, "start": None}
    assert {k: v for k, v in run.config.items() if k != "owner"}  # the rest is kept
    with pytest.raises(RunNotFoundError):
        store.mark_running("nope", {"pid": 1})
    with pytest.raises(ConfigurationError, match="owner"):
        store.mark_running("run-1", {"pid": object()})


def test_replaying_every_write_changes_nothing(store: RunStore) -> None:
    populate(store)
    before = snapshot(store, "run-1")
    populate(store)
    assert snapshot(store, "run-1") == before


def test_data_survives_reopening(store_url: str) -> None:
    with RunStore(store_url) as first:
        populate(first)
        expected = snapshot(first, "run-1")
    with RunStore(store_url) as second:
        assert snapshot(second, "run-1") == expected


def test_two_stores_on_one_database_see_each_others_writes(store_url: str) -> None:
    with RunStore(store_url) as writer, RunStore(store_url) as reader:
        writer.create_run("r", {}, V0)
        writer.record_task("r", BAD, "rejected", "weak tests", None, 1, "")
        assert [t.task_id for t in reader.tasks("r")] == ["bad"]


def test_closed_store_refuses_work(store_url: str) -> None:
    s = RunStore(store_url)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.list_runs()


async def test_async_context_manager_closes(store_url: str) -> None:
    async with RunStore(store_url) as s:
        s.create_run("r", {}, V0)
    with pytest.raises(StoreError, match="closed"):
        s.get_run("r")


def test_a_verified_task_is_never_downgraded_by_a_later_rejection(store: RunStore) -> None:
    store.create_run("r", {}, V0)
    store.record_task("r", REV, "accepted", "verified", verdict(True, "ok"), 2, "empty input")
    duplicate = {**REV, "reason": "duplicate of an earlier task", "iteration": 3}
    store.record_task("r", duplicate, "rejected", "duplicate of an earlier task", None, 3, "x")
    store.record_task("r", ADD, "seed", "seed task", None, 1, "")
    store.record_task("r", {**ADD, "reason": "dup"}, "rejected", "duplicate", None, 2, "")
    tasks = {t.task_id: t for t in store.tasks("r")}
    rev, add = tasks["rev"], tasks["add"]
    assert (rev.status, rev.reason, rev.difficulty, rev.task) == ("accepted", "verified", 2, REV)
    assert [v.status for v in rev.verdicts] == ["accepted", "rejected"]
    assert (add.status, add.task) == ("seed", ADD)
    assert store.get_run("r").accepted_tasks == 1


def test_a_rejected_task_can_be_accepted_later(store: RunStore) -> None:
    store.create_run("r", {}, V0)
    store.record_task("r", REV, "rejected", "duplicate", None, 2, "")
    store.record_task("r", REV, "accepted", "verified", verdict(True, "ok"), 2, "w")
    (task,) = store.tasks("r")
    assert (task.status, task.weakness) == ("accepted", "w")


def test_diff_of_texts_without_final_newline_keeps_lines_apart(store: RunStore) -> None:
    store.create_run("r", {}, "a")
    store.record_prompt_version("r", "v0", "line one", None, True, {}, "", 0)
    store.record_prompt_version("r", "v1", "line one\nline two", "v0", True, {}, "", 1)
    diff = store.prompt_lineage("r")[1].diff
    assert diff.splitlines() == ["--- v0", "+++ v1", "@@ -1 +1,2 @@", " line one", "+line two"]


def test_best_score_falls_back_to_pass_rate(store: RunStore) -> None:
    store.create_run("r", {}, V0)
    store.record_prompt_version("r", "v0", V0, None, True, {"pass_rate": 0.25}, "", 0)
    store.record_prompt_version("r", "v1", V1, "v0", True, {"pass_rate": 0.75}, "", 1)
    store.record_prompt_version("r", "v2", V2, "v1", False, {"pass_rate": 1.0}, "", 2)
    assert store.get_run("r").best_score == pytest.approx(0.75)
