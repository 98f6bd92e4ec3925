"""The loop recording into the real RunStore on a SQLite file, paused and resumed from a
SQLite checkpoint by a fresh graph object (as a restarted process would)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from sipdo.graph import Budget, create_sipdo_graph
from sipdo.sandbox import Sandbox
from sipdo.store import RunStore
from tests.graph import world

INITIAL = "You write Python functions."


def make_graph(sandbox: Sandbox, store: RunStore, db: Path) -> Any:
    saver = SqliteSaver(sqlite3.connect(db, check_same_thread=False))
    return create_sipdo_graph(
        world.learner_model(always=["rotate_left"]),
        generator_model=world.generator_model(world.CLAMP),
        checker_model=world.checker_model(),
        optimizer_model=world.optimizer_model("Check every edge case. FIX"),
        domain=world.domain(),
        sandbox=sandbox,
        run_store=store,
        checkpointer=saver,
        budget=Budget(iterations=1, tasks_per_iteration=1),
        approve_prompts=True,
    )


def test_run_recorded_and_resumed_in_sqlite(sandbox: Sandbox, tmp_path: Path) -> None:
    store = RunStore(f"sqlite:///{tmp_path / 'runs.db'}")
    checkpoints = tmp_path / "checkpoints.db"
    cfg: Any = {"configurable": {"thread_id": "thread-9", "run_id": "run-42"}}
    seeds = world.level_one_seeds()  # four failures and clamp: the default gate promotes

    paused = make_graph(sandbox, store, checkpoints).invoke(
        {"prompt": INITIAL, "seed_tasks": seeds}, cfg
    )
    assert "__interrupt__" in paused
    assert store.get_run("run-42").status != "finished"
    before = store.attempts("run-42")

    # A new graph object and a new checkpointer connection: only the files carry the run.
    resumed = make_graph(sandbox, store, checkpoints)
    out = resumed.invoke(Command(resume=True), cfg)
    assert out["best_prompt"] == "Check every edge case. FIX"

    run = store.get_run("run-42")
    assert run.status == "finished"
    assert run.stop_reason == out["stop_reason"] == "iterations"
    assert run.best_prompt == out["best_prompt"]
    assert run.initial_prompt == INITIAL
    lineage = store.prompt_lineage("run-42")
    assert [v.accepted for v in lineage] == [True, True]
    assert lineage[1].parent_id == lineage[0].version_id
    assert "FIX" in lineage[1].diff
    tasks = {t.task["entry_point"]: t for t in store.tasks("run-42")}
    assert tasks["rotate_left"].status == "seed"
    assert tasks["clamp"].status == "accepted"
    assert tasks["clamp"].first_failed_version == lineage[0].version_id
    assert tasks["clamp"].first_solved_version == lineage[1].version_id
    # The candidate was checked before the pause; resuming neither loses nor repeats attempts.
    after = store.attempts("run-42")
    assert [(a.task_id, a.prompt_version_id) for a in after] == [
        (a.task_id, a.prompt_version_id) for a in before
    ]
    assert sum(a.prompt_version_id == lineage[1].version_id and a.passed for a in after) == 6
    usage = {u.role: u for u in store.usage("run-42")}
    assert usage["learner"].calls == out["budget_used"]["model_calls"]["learner"]
    assert usage["optimizer"].calls == 3
    rewards = list(store.export("run-42", "textual-reward"))
    assert len(rewards) == len(after)
    store.close()
