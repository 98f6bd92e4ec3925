"""Held-out tracking during a run: graded versions, the curve in the store, the drop stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from sipdo.graph import Budget, create_sipdo_graph
from sipdo.sandbox import Sandbox
from sipdo.store import RunStore
from sipdo.testing import ScriptedChatModel
from tests.graph import world
from tests.graph.test_loop import INITIAL, run, seeds

HELD_OUT = ("second_largest", "word_frequencies")
# Three failing seeds and two generated tasks: five fixes, what the default gate promotes on.
TRAINING = ("rotate_left", "chunk", "run_length_encode")


def held_out_tasks() -> list[dict[str, Any]]:
    return [dict(world.SEEDS[name]) for name in HELD_OUT]


def learner(good_on_holdout: str = "FIX") -> ScriptedChatModel:
    """Training tasks right under ``FIX``; held-out tasks right under ``good_on_holdout``."""

    def respond(messages: list[BaseMessage]) -> str:
        system, entry = str(messages[0].content), world.entry_point_of(messages)
        token = good_on_holdout if entry in HELD_OUT else "FIX"
        good = token in system
        return world.fenced(world.reference(entry) if good else world.wrong(entry))

    return ScriptedChatModel(responder=respond, name="learner")


def build(sandbox: Sandbox, model: ScriptedChatModel, **kw: Any) -> Any:
    generator = world.generator_model(world.CLAMP, world.DEDUPE, world.CLAMP, world.DEDUPE)
    return create_sipdo_graph(
        model,
        generator_model=kw.pop("generator_model", generator),
        checker_model=world.checker_model(),
        optimizer_model=kw.pop("optimizer_model", world.optimizer_model("Be precise. FIX")),
        domain=world.domain(),
        sandbox=sandbox,
        **kw,
    )


async def test_initial_and_promoted_versions_are_graded_on_the_held_out_set(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    optimizer = world.optimizer_model("Be precise. FIX")
    generator_calls = world.generator_model(world.CLAMP, world.DEDUPE)
    with RunStore(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        g = build(
            sandbox,
            learner(),
            optimizer_model=optimizer,
            generator_model=generator_calls,
            budget=Budget(iterations=1, tasks_per_iteration=2),
            holdout=held_out_tasks(),
            run_store=store,
        )
        out, events = await run(g, {"prompt": INITIAL, "seed_tasks": seeds(*TRAINING)}, run_id="h1")
        curve = store.list_evals(source_run_id="h1")

    assert out["best_prompt"] == "Be precise. FIX"
    assert [(h["passed"], h["total"]) for h in out["holdout"]] == [(0, 2), (2, 2)]
    assert out["holdout"][0]["version_id"] == out["prompt_versions"][0]["version_id"]
    assert out["holdout"][1]["version_id"] == out["prompt_versions"][1]["version_id"]
    assert [h["pass_at_1"] for h in out["holdout"]] == [0.0, 1.0]
    graded = [e for e in events if e["event"] == "holdout_result"]
    assert [e["passed"] for e in graded] == [0, 2]
    assert [h for h in out["history"] if h["kind"] == "holdout"] == out["holdout"]
    # The store keeps the curve: one eval per graded version, oldest first.
    assert [e.eval_id for e in curve] == [h["eval_id"] for h in out["holdout"]]
    # Held out means held out: no other role ever saw those tasks.
    for model in (optimizer, generator_calls):
        for call in model.calls:
            assert not any(name in call.text for name in HELD_OUT)
    assert not any(t["entry_point"] in HELD_OUT for t in out["accepted_tasks"])


async def test_a_held_out_drop_ends_the_run_when_asked(sandbox: Sandbox) -> None:
    # The initial prompt is right on the held-out tasks; the promoted one fixes the
    # training failures but loses the held-out ones: a textbook overfit.
    start = "HOLDOUT-GOOD. " + INITIAL
    g = build(
        sandbox,
        learner(good_on_holdout="HOLDOUT-GOOD"),
        budget=Budget(iterations=3, tasks_per_iteration=2),
        holdout=held_out_tasks(),
        stop_on_holdout_drop=True,
    )
    out, events = await run(g, {"prompt": start, "seed_tasks": seeds(*TRAINING)})

    assert [h["pass_at_1"] for h in out["holdout"]] == [1.0, 0.0]
    assert out["stop_reason"] == "holdout_drop"
    assert out["iteration"] == 1  # it did not go on to iterations 2 and 3
    assert events[-1]["event"] == "run_end"
    assert events[-1]["stop_reason"] == "holdout_drop"
