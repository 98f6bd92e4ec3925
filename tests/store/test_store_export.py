"""Export formats, on both databases, with content assertions."""

from __future__ import annotations

import json

import pytest

from sipdo.errors import ConfigurationError
from sipdo.store import EXPORT_FORMATS, RunStore
from tests.store.runkit import ADD, REV, RIGHT_ADD, V0, V1, V2, WRONG_ADD, WRONG_REV, populate


def export(store: RunStore, fmt: str) -> list[dict[str, object]]:
    records = list(store.export("run-1", fmt))
    for record in records:
        json.dumps(record)  # every record is one JSONL line
    return records


def test_formats_are_the_five_documented() -> None:
    assert set(EXPORT_FORMATS) == {"eval", "sft", "dpo", "textual-reward", "demonstrations"}


def test_a_run_without_demonstrations_exports_none(store: RunStore) -> None:
    populate(store)
    assert export(store, "demonstrations") == []


def test_eval_exports_seed_and_accepted_tasks_only(store: RunStore) -> None:
    populate(store)
    records = export(store, "eval")
    assert [(r["id"], r["status"], r["difficulty"]) for r in records] == [
        ("add", "seed", 1),
        ("rev", "accepted", 2),
    ]
    assert records[0]["task"] == ADD
    assert records[1]["task"] == REV
    assert records[1]["weakness"] == "empty input"


def test_sft_pairs_prompt_task_and_passing_answer(store: RunStore) -> None:
    populate(store)
    assert export(store, "sft") == [
        {
            "prompt": V1,
            "task_id": "add",
            "query": ADD["prompt"],
            "answer": RIGHT_ADD,
            "prompt_version_id": "v1",
            "score": 1.0,
        }
    ]


def test_dpo_has_prompt_pairs_and_answer_pairs(store: RunStore) -> None:
    populate(store)
    records = export(store, "dpo")
    prompt_pairs = [r for r in records if r["kind"] == "prompt"]
    answer_pairs = [r for r in records if r["kind"] == "answer"]
    # v2 was rejected; v1 (accepted, same parent v0) is what replaced it.
    assert prompt_pairs == [
        {
            "kind": "prompt",
            "chosen": V1,
            "rejected": V2,
            "chosen_id": "v1",
            "rejected_id": "v2",
            "reason": "regressed: breaks add",
        }
    ]
    pairs = {(r["task_id"], r["rejected"]): r["chosen"] for r in answer_pairs}
    # add: a passing learner answer exists; rev: nobody passed, the verified reference is chosen.
    assert pairs == {("add", WRONG_ADD): RIGHT_ADD, ("rev", WRONG_REV): REV["reference_solution"]}
    assert all(r["prompt"] in (ADD["prompt"], REV["prompt"]) for r in answer_pairs)


def test_dpo_falls_back_to_the_parent_when_no_sibling_was_accepted(store: RunStore) -> None:
    store.create_run("run-1", {}, V0)
    store.record_prompt_version("run-1", "v0", V0, None, True, {}, "", 0)
    store.record_prompt_version("run-1", "v2", V2, "v0", False, {}, "breaks add", 1)
    records = export(store, "dpo")
    assert [(r["chosen_id"], r["rejected_id"]) for r in records] == [("v0", "v2")]


def test_textual_reward_has_every_solving_attempt_with_feedback(store: RunStore) -> None:
    populate(store)
    records = export(store, "textual-reward")
    assert [(r["task_id"], r["prompt_version_id"], r["passed"]) for r in records] == [
        ("add", "v0", False),
        ("rev", "v0", False),
        ("rev", "v2", False),
        ("add", "v1", True),
        ("rev", "v1", False),
    ]
    first = records[0]
    assert first == {
        "query": ADD["prompt"],
        "prompt": V0,
        "answer": WRONG_ADD,
        "reward": "add(1,2) gave -1",
        "passed": False,
        "score": 0.0,
        "task_id": "add",
        "prompt_version_id": "v0",
    }
    assert all(r["prompt"] for r in records)


def test_unknown_format_lists_the_formats(store: RunStore) -> None:
    populate(store)
    with pytest.raises(ConfigurationError) as err:
        store.export("run-1", "csv")
    for name in ("eval", "sft", "dpo", "textual-reward", "demonstrations"):
        assert name in str(err.value)
