"""The strategy state a report shows: E-SPL's ratings and GEPA's Pareto front.

Each strategy runs the whole loop (the strategy contract's scripted world, a
real sandbox) with a real SQLite run store and a real SQLite checkpoint, the way
``sipdo run`` records a run; the report then reads both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from sipdo.graph import Budget, create_sipdo_graph
from sipdo.plugins.registry import load_target
from sipdo.report import build_report, collect
from sipdo.sandbox import Sandbox
from sipdo.store import RunStore
from tests.graph import world
from tests.optimizers.omni import omni_model

TARGETS = {
    "espl": "sipdo.plugins.optimizers.espl:ESPLStrategy",
    "gepa": "sipdo.plugins.optimizers.gepa:GEPAStrategy",
}


async def record_run(tmp_path: Path, sandbox: Sandbox, name: str) -> tuple[str, Path]:
    url, ckpt = f"sqlite:///{tmp_path / 'runs.db'}", tmp_path / "runs.checkpoints.db"
    with RunStore(url) as store:
        store.create_run(name, {"strategy": name}, "You write Python functions.")
        async with AsyncSqliteSaver.from_conn_string(str(ckpt)) as saver:
            graph = create_sipdo_graph(
                world.learner_model(always=["rotate_left"]),
                generator_model=world.generator_model(world.CLAMP),
                checker_model=world.checker_model(),
                optimizer_model=omni_model(),
                domain=world.domain(),
                gate="strict",  # a few tasks: below the default sign test
                strategy=load_target(TARGETS[name])(),
                budget=Budget(iterations=1, tasks_per_iteration=1, max_refinements=2),
                sandbox=sandbox,
                checkpointer=saver,
                run_store=store,
            )
            config: Any = {"configurable": {"thread_id": name, "run_id": name}}
            seeds = [dict(world.SEEDS["rotate_left"]), dict(world.SEEDS["chunk"])]
            await graph.ainvoke(
                {"prompt": "You write Python functions.", "seed_tasks": seeds}, config
            )
    return url, ckpt


@pytest.mark.slow
async def test_espl_ratings_are_shown(tmp_path: Path, process_sandbox: Sandbox) -> None:
    url, ckpt = await record_run(tmp_path, process_sandbox, "espl")
    with RunStore(url) as store:
        data = collect(store, "espl", checkpoint=ckpt)
        page = build_report(store, "espl", checkpoint=ckpt)
    versions = {v.version_id for v in data.versions}
    assert data.ratings
    assert set(data.ratings) <= versions | set(data.score_table)
    assert all(sigma > 0 for _, sigma in data.ratings.values())
    assert 'id="ratings"' in page
    rated = [v for v in data.versions if v.rating is not None]
    assert rated  # each candidate E-SPL put forward carries its rating into the store
    assert all(v.rating[1] > 0 for v in rated if v.rating)
    assert "(TrueSkill, when put forward)" in page


@pytest.mark.slow
async def test_gepa_front_is_shown(tmp_path: Path, process_sandbox: Sandbox) -> None:
    url, ckpt = await record_run(tmp_path, process_sandbox, "gepa")
    with RunStore(url) as store:
        data = collect(store, "gepa", checkpoint=ckpt)
        page = build_report(store, "gepa", checkpoint=ckpt)
    assert data.front
    assert all(cands for cands in data.front.values())
    assert set(data.front) <= {t.task_id for t in data.tasks}
    assert 'id="front"' in page
    on_front = [v for v in data.versions if v.front]
    assert on_front  # GEPA records where each candidate it put forward stands
    assert all(set(v.front) <= {t.task_id for t in data.tasks} for v in on_front)
    assert "on the Pareto front of" in page
