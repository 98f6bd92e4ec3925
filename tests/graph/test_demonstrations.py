"""Verified demonstrations through the whole loop: scripted roles, real verification.

The scripted learner here learns from examples: it answers a task right when its
prompt says FIX, when the task is in ``always``, or when the conversation already
holds an earlier assistant turn (a demonstration). The pool, the rendering, the
promotion and the hygiene are the real graph's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from typer.testing import CliRunner

from sipdo.cli import app
from sipdo.graph import Budget, create_sipdo_graph
from sipdo.plugins.optimizers.base import Evaluate, OptimizerView, Selection, StrategyFlow
from sipdo.plugins.optimizers.candidates import DEMONSTRATIONS, NewCandidate
from sipdo.sandbox import Sandbox
from sipdo.store import RunStore
from sipdo.testing import ScriptedChatModel
from tests.graph import world

INITIAL = "You write Python functions."


def learner(always: tuple[str, ...] = ("rotate_left",)) -> ScriptedChatModel:
    def respond(messages: list[BaseMessage]) -> str:
        entry = world.entry_point_of(messages)
        shown = any(isinstance(m, AIMessage) for m in messages)
        good = "FIX" in str(messages[0].content) or entry in always or shown
        return world.fenced(world.reference(entry) if good else world.wrong(entry))

    return ScriptedChatModel(responder=respond, name="learner")


def build(sandbox: Sandbox, model: ScriptedChatModel, **kw: Any) -> Any:
    kw.setdefault("optimizer_model", world.optimizer_model("Be careful."))
    kw.setdefault("budget", Budget(iterations=1, tasks_per_iteration=1, max_refinements=1))
    kw.setdefault("strategy", "sipdo")  # world.optimizer_model scripts its requests
    return create_sipdo_graph(
        model,
        generator_model=world.generator_model(world.CLAMP),
        checker_model=world.checker_model(),
        domain=world.domain(),
        sandbox=sandbox,
        demonstrations=3,
        **kw,
    )


def turns(messages: list[BaseMessage]) -> list[str]:
    """The functions of the user turns before the last one (the demonstrations shown)."""
    return [world.entry_point_of([m]) for m in messages[1:-1] if isinstance(m, HumanMessage)]


async def test_a_verified_demonstration_is_rendered_and_promoted_by_the_gate(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    model = learner()
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    cfg: Any = {"configurable": {"thread_id": "demos", "run_id": "run-demos"}}
    with RunStore(url) as store:
        g = build(sandbox, model, run_store=store)
        out = await g.ainvoke({"prompt": INITIAL, "seed_tasks": world.level_one_seeds()}, cfg)

    # The pool: only the verified task the learner's answer passed in the sandbox.
    pool = out["demonstrations"]
    rotate = world.SEEDS["rotate_left"]
    assert [d["task_id"] for d in pool.values()] == [rotate["id"]]
    [entry] = pool.values()
    assert world.reference("rotate_left").strip() in entry["reply"]
    # The refinement fixed nothing; the candidate showing that demonstration fixed the
    # four failing seeds and the generated task: the default gate's sign test promoted it.
    [attempt] = [h for h in out["history"] if h["kind"] == "prompt_attempt"]
    promoted = out["candidates"][attempt["version_id"]]
    assert attempt["accepted"], attempt["reason"]
    assert promoted["operator"] == "add_demonstration"
    assert promoted["components"][DEMONSTRATIONS] == entry["id"]
    assert promoted["flags"] == []  # specific by design, never flagged for it
    assert len(attempt["fixed"]) == 5
    assert attempt["broken"] == []
    decision = next(d for d in out["decisions"] if d["candidate_id"] == promoted["id"])
    assert decision["policy"] == "statistical"
    assert out["best_prompt"] == INITIAL  # the text is unchanged; the demonstration is not text
    # Rendered as an earlier exchange: the task's user turn, then the verified reply.
    shown = [c.messages for c in model.calls if turns(c.messages)]
    assert shown, "no learner call carried the demonstration"
    for messages in shown:
        assert turns(messages) == ["rotate_left"]
        assert messages[2].content == entry["reply"]
        assert world.entry_point_of(messages) != "rotate_left"  # never its own task
    graded_under = {world.entry_point_of(c.messages) for c in model.calls if turns(c.messages)}
    assert "rotate_left" not in graded_under
    assert {"chunk", "clamp"} <= graded_under

    # The lineage keeps it: `sipdo show` names it, `sipdo export` writes it out.
    shown_cli = CliRunner().invoke(app, ["show", "run-demos", "--db", url], env={"COLUMNS": "200"})
    assert shown_cli.exit_code == 0, shown_cli.output
    assert f"demonstrations: {entry['id']} (task {rotate['id']})" in shown_cli.output
    target = tmp_path / "demos.jsonl"
    done = CliRunner().invoke(
        app, ["export", "run-demos", "--format", "demonstrations", "-o", str(target), "--db", url]
    )
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    mine = next(r for r in rows if r["prompt_version_id"] == promoted["id"])
    assert mine["accepted"] is True
    assert mine["demonstrations"] == [
        {
            "id": entry["id"],
            "task_id": rotate["id"],
            "query": rotate["prompt"],
            "reply": entry["reply"],
        }
    ]


async def test_a_held_out_task_never_becomes_a_demonstration(sandbox: Sandbox) -> None:
    # The user gave the same task as a seed and as held out: it stays out of the pool.
    chunk = dict(world.SEEDS["chunk"])
    model = learner(always=("rotate_left", "chunk"))
    g = build(sandbox, model, holdout=[chunk])
    out = await g.ainvoke({"prompt": INITIAL, "seed_tasks": world.level_one_seeds()})
    tasks = {d["task_id"] for d in out["demonstrations"].values()}
    assert tasks == {world.SEEDS["rotate_left"]["id"]}
    for cand in out["candidates"].values():
        assert chunk["id"] not in {d["task_id"] for d in cand.get("demonstrations", [])}


class ProposeUnknown:
    """A strategy that puts forward a demonstration id the run never verified."""

    name = "propose-unknown"

    def estimate_calls(self, n_tasks: int, n_failures: int) -> dict[str, int]:
        return {"learner": n_tasks}

    def step(self, view: OptimizerView) -> StrategyFlow:
        comps = {**view.components(view.incumbent), DEMONSTRATIONS: "demo-forged"}
        cand = NewCandidate(comps, [view.incumbent], "forged")
        yield [Evaluate([cand], view.task_ids)]
        return Selection(cand.id)


async def test_a_demonstration_outside_the_verified_pool_is_refused(sandbox: Sandbox) -> None:
    model = learner()
    g = build(sandbox, model, strategy=ProposeUnknown())
    out = await g.ainvoke({"prompt": INITIAL, "seed_tasks": world.level_one_seeds()})
    [attempt] = [h for h in out["history"] if h["kind"] == "prompt_attempt"]
    assert not attempt["accepted"]
    assert attempt["reason"] == (
        "demonstrations refused: demo-forged is not a verified demonstration of this run"
    )
    forged = out["candidates"][attempt["version_id"]]
    assert forged["refused"]
    assert attempt["version_id"] not in out["score_table"]  # never shown to the learner


async def test_a_run_killed_mid_step_resumes_to_the_same_demonstrations(
    sandbox: Sandbox,
) -> None:
    seeds = world.level_one_seeds()
    baseline = await build(sandbox, learner()).ainvoke({"prompt": INITIAL, "seed_tasks": seeds})

    class Crash(Exception):
        pass

    script = world.optimizer_script("Be careful.")
    calls = {"n": 0}

    def crashing(messages: list[BaseMessage]) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the recommendation: after the analysis was journaled
            return Crash("backend died mid-step")
        return script[calls["n"] - 1]

    saver = InMemorySaver()
    cfg: Any = {"configurable": {"thread_id": "demos-crash"}}
    first = build(
        sandbox,
        learner(),
        optimizer_model=ScriptedChatModel(responder=crashing),
        checkpointer=saver,
    )
    try:
        await first.ainvoke({"prompt": INITIAL, "seed_tasks": seeds}, cfg)
        raise AssertionError("the scripted crash did not happen")
    except Crash:
        pass
    resumed = build(
        sandbox, learner(), optimizer_model=ScriptedChatModel(script[1:]), checkpointer=saver
    )
    out = await resumed.ainvoke(None, cfg)
    assert out["demonstrations"] == baseline["demonstrations"]
    assert set(out["candidates"]) == set(baseline["candidates"])
    assert out["score_table"] == baseline["score_table"]
    best = [d["candidate_id"] for d in out["decisions"] if d["promoted"]]
    assert best == [d["candidate_id"] for d in baseline["decisions"] if d["promoted"]]
    assert out["candidates"][best[0]]["components"][DEMONSTRATIONS]
