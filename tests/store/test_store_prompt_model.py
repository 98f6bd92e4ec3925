"""Prompt-model training rounds in the run store, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from sipdo.errors import ConfigurationError, RunNotFoundError
from sipdo.store import RunStore
from tests.store.runkit import populate


def round_values(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "base_model": "local:qwen2.5-coder-0.5b",
        "output_dir": "/models/pm",
        "train_examples": 6,
        "train_loss": 2.5,
        "heldout_tasks": 2,
        "heldout_reward": 0.75,
        "heldout_pass_rate": 0.5,
        "optimal_reward": "passed all tests",
        "seconds": 12.5,
    }
    values.update(changes)
    return values


def test_rounds_read_back_in_training_then_round_order(store: RunStore) -> None:
    populate(store)
    store.record_prompt_model_round("run-1", "pm-b", 2, **round_values(train_loss=1.0))
    store.record_prompt_model_round("run-1", "pm-b", 1, **round_values(train_loss=2.0))
    store.record_prompt_model_round("run-1", "pm-a", 1, **round_values(heldout_reward=None))
    rounds = store.prompt_model_rounds("run-1")
    assert [(r.training_id, r.round, r.train_loss) for r in rounds] == [
        ("pm-b", 1, 2.0),
        ("pm-b", 2, 1.0),
        ("pm-a", 1, 2.5),
    ]
    first = rounds[0]
    assert (first.base_model, first.output_dir, first.train_examples) == (
        "local:qwen2.5-coder-0.5b",
        "/models/pm",
        6,
    )
    assert (first.heldout_tasks, first.heldout_reward, first.heldout_pass_rate) == (2, 0.75, 0.5)
    assert (first.optimal_reward, first.seconds) == ("passed all tests", 12.5)
    assert rounds[2].heldout_reward is None


def test_repeating_a_round_replaces_it(store: RunStore) -> None:
    populate(store)
    store.record_prompt_model_round("run-1", "pm", 1, **round_values(train_loss=3.0))
    store.record_prompt_model_round(
        "run-1", "pm", 1, **round_values(train_loss=1.5, optimal_reward="better")
    )
    rounds = store.prompt_model_rounds("run-1")
    assert [(r.round, r.train_loss, r.optimal_reward) for r in rounds] == [(1, 1.5, "better")]


def test_rounds_belong_to_their_run_and_go_with_it(store: RunStore) -> None:
    populate(store, "run-1")
    populate(store, "run-2")
    store.record_prompt_model_round("run-1", "pm", 1, **round_values())
    store.record_prompt_model_round("run-2", "pm", 1, **round_values(train_loss=0.5))
    assert [r.train_loss for r in store.prompt_model_rounds("run-2")] == [0.5]
    store.delete_run("run-1")
    with pytest.raises(RunNotFoundError):
        store.prompt_model_rounds("run-1")
    assert len(store.prompt_model_rounds("run-2")) == 1


def test_bad_round_values_are_refused(store: RunStore) -> None:
    populate(store)
    with pytest.raises(RunNotFoundError):
        store.record_prompt_model_round("nope", "pm", 1, **round_values())
    with pytest.raises(ConfigurationError, match="round must be >= 1"):
        store.record_prompt_model_round("run-1", "pm", 0, **round_values())
    with pytest.raises(ConfigurationError, match="train_loss must be a finite number"):
        store.record_prompt_model_round("run-1", "pm", 1, **round_values(train_loss=float("nan")))
    with pytest.raises(ConfigurationError, match="training_id"):
        store.record_prompt_model_round("run-1", "", 1, **round_values())
    assert store.prompt_model_rounds("run-1") == []
