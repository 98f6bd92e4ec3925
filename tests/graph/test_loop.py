"""Full SIPDO loops through every branch, with scripted roles and real verification."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.graph.state import CompiledStateGraph

from sipdo.graph import Budget, create_sipdo_graph
from sipdo.graph.events import EVENTS
from sipdo.sandbox import Sandbox
from tests.graph import world
from tests.graph.conftest import RecordingRunStore

INITIAL = "You write Python functions."
# The scripted learner fails four of these: with the two generated tasks, a candidate that
# fixes every failure wins 6 of 7 tasks and ties one, which the default (statistical) gate's
# sign test accepts (p = 1/64); 3 of 3 would be p = 0.125.
FIVE = world.LEVEL_ONE


def seeds(*names: str, difficulty: int | None = None) -> list[dict[str, Any]]:
    out = [dict(world.SEEDS[n]) for n in names]
    if difficulty is not None:
        for task in out:
            task["difficulty"] = difficulty
    return out


def build(sandbox: Sandbox, **kw: Any) -> CompiledStateGraph[Any, Any, Any, Any]:
    kw.setdefault("generator_model", world.generator_model(world.CLAMP, world.DEDUPE))
    kw.setdefault("checker_model", world.checker_model())
    kw.setdefault("optimizer_model", world.optimizer_model("Be precise. FIX"))
    kw.setdefault("budget", Budget(iterations=1, tasks_per_iteration=2))
    kw.setdefault("domain", world.domain())
    kw.setdefault("strategy", "sipdo")  # world.optimizer_model scripts its requests
    learner = kw.pop("learner", world.learner_model(always=["rotate_left"]))
    return create_sipdo_graph(learner, sandbox=sandbox, **kw)


async def run(
    graph: CompiledStateGraph[Any, Any, Any, Any], state: dict[str, Any], **config: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    cfg = {"configurable": config} if config else None
    async for mode, chunk in graph.astream(state, cfg, stream_mode=["custom", "values"]):
        if mode == "custom":
            events.append(chunk)
        else:
            final = chunk
    return final, events


async def test_learner_fails_then_prompt_accepted(sandbox: Sandbox) -> None:
    generator = world.generator_model(world.CLAMP, world.DEDUPE)
    checker = world.checker_model()
    g = build(sandbox, generator_model=generator, checker_model=checker)
    out, events = await run(g, {"prompt": INITIAL, "seed_tasks": seeds(*FIVE)})

    assert out["stop_reason"] == "iterations"
    assert out["best_prompt"] == "Be precise. FIX"
    assert {t["entry_point"] for t in out["accepted_tasks"]} == {"clamp", "dedupe_keep_order"}
    assert all(t["difficulty"] == 2 for t in out["accepted_tasks"])
    assert out["difficulty"] == 2
    # The seed failures were the generator's target, with the verifier's feedback.
    assert all("chunk" in c.text and "What went wrong" in c.text for c in generator.calls)
    # The checker never sees the generator's answer.
    for call in checker.calls:
        assert "reference_solution" not in call.text
        assert world.CLAMP["tests"].strip() not in call.text
    attempts = [h for h in out["history"] if h["kind"] == "prompt_attempt"]
    assert len(attempts) == 1
    assert attempts[0]["accepted"]
    assert len(attempts[0]["fixed"]) == 6
    assert attempts[0]["broken"] == []
    assert "fixed 6/6" in attempts[0]["feedback"]
    assert [v["accepted"] for v in out["prompt_versions"]] == [True, True]
    assert out["prompt_versions"][1]["parent_id"] == out["prompt_versions"][0]["version_id"]
    used = out["budget_used"]
    # learner: 5 seeds + 2 accepted + 7 re-checks under the candidate
    assert used["model_calls"] == {"learner": 14, "generator": 2, "checker": 2, "optimizer": 3}
    assert used["sandbox_seconds"] > 0
    kinds = [e["event"] for e in events]
    # every documented event kind shows up in this run (held-out results: test_holdout.py;
    # a step without a candidate: test_generated_markdown.py)
    assert set(kinds) == EVENTS - {"holdout_result", "no_candidate"}
    assert kinds[-1] == "run_end"
    cand = next(e for e in events if e["event"] == "prompt_candidate")
    assert cand["accepted"]
    assert cand["fixed"] == 6
    assert cand["broken"] == 0
    decision = next(d for d in out["decisions"] if d["candidate_id"] == cand["version_id"])
    assert decision["policy"] == "statistical"
    assert decision["stats"]["p_value"] == pytest.approx(1 / 64)


async def test_prompt_rejected_by_gate_then_refined_up_to_limit(sandbox: Sandbox) -> None:
    optimizer = world.optimizer_model("BREAK one", "BREAK two")
    g = build(
        sandbox,
        optimizer_model=optimizer,
        budget=Budget(iterations=1, tasks_per_iteration=2, max_refinements=2),
        learner=world.learner_model(always=["rotate_left", "chunk", "clamp"]),
        gate="strict",
    )
    out, events = await run(g, {"prompt": INITIAL, "seed_tasks": seeds("rotate_left", "chunk")})

    assert out["best_prompt"] == INITIAL
    attempts = [h for h in out["history"] if h["kind"] == "prompt_attempt"]
    assert [a["accepted"] for a in attempts] == [False, False]
    assert all("no-regression" in a["reason"] for a in attempts)
    assert all(len(a["broken"]) == 3 for a in attempts)  # rotate_left, chunk, clamp broken
    assert "broke 3/3" in attempts[0]["feedback"]
    # the second refinement saw the first attempt's textual reward
    assert "broke 3/3" in optimizer.calls[-1].text
    assert optimizer.remaining == 0
    assert [v["accepted"] for v in out["prompt_versions"]] == [True, False, False]
    rejected = [e for e in events if e["event"] == "prompt_candidate"]
    assert [e["accepted"] for e in rejected] == [False, False]


async def test_tasks_rejected_with_reasons(sandbox: Sandbox) -> None:
    dup = world.gen_task(
        "rotate_left",
        world.SEEDS["rotate_left"]["prompt"].upper(),  # same task, different case and spacing
        world.SEEDS["rotate_left"]["reference_solution"],
        world.SEEDS["rotate_left"]["tests"],
    )
    # the repeat is sent back once and repeated again (the last reply)
    generator = world.generator_model(world.UNSOUND, dup, "no json here", "{broken", "[]", dup)
    g = build(
        sandbox,
        generator_model=generator,
        learner=world.learner_model(always=["rotate_left"]),
        budget=Budget(iterations=1, tasks_per_iteration=3),
    )
    out, events = await run(g, {"prompt": INITIAL, "seed_tasks": seeds("rotate_left")})

    reasons = [r["reason"] for r in out["rejected_tasks"]]
    assert len(reasons) == 3, reasons
    dup = next(r for r in out["rejected_tasks"] if "duplicate" in r["reason"])
    assert dup["duplicate_of"] == world.SEEDS["rotate_left"]["id"]
    assert dup["id"] != dup["duplicate_of"]
    assert "Your last task repeated `rotate_left`, which already exists" in generator.calls[-1].text
    assert generator.remaining == 0
    assert any("generator output unusable" in r for r in reasons)
    unsound = next(r for r in out["rejected_tasks"] if r.get("entry_point") == "count_vowels")
    assert unsound["reason"]
    assert unsound["verdict"]["passed"] is False
    assert out["accepted_tasks"] == []
    verdicts = [e for e in events if e["event"] == "task_verdict"]
    assert len(verdicts) == 3
    assert not any(e["accepted"] for e in verdicts)
    assert out["stop_reason"] == "iterations"


async def test_a_repeated_task_gets_one_second_chance(sandbox: Sandbox) -> None:
    # A weak generator copies a task it was shown; told what it repeated, it writes
    # another, which is verified like any other. Two copies in one batch: the later is
    # the repeat, and its second chance repeats the first copy's task again.
    copy = dict(world.SEEDS["rotate_left"])
    generator = world.generator_model(copy, world.CLAMP, world.DEDUPE)
    g = build(
        sandbox,
        generator_model=generator,
    )
    out, _ = await run(g, {"prompt": INITIAL, "seed_tasks": seeds(*FIVE)})

    retold = generator.calls[-1]
    assert "Your last task repeated `rotate_left`" in retold.text
    # the example shown (the one copied) is another one in the second request
    signature = world.SEEDS["rotate_left"]["prompt"].splitlines()[0]
    assert signature in generator.calls[0].text
    assert signature not in retold.text
    assert "A finished task in the reply layout" in retold.text
    assert {t["entry_point"] for t in out["accepted_tasks"]} == {"clamp", "dedupe_keep_order"}
    assert out["rejected_tasks"] == []
    generation = next(h for h in out["history"] if h["kind"] == "generation")
    assert len(generation["new"]) == 2


async def test_a_task_repeated_within_one_batch_is_sent_back_too(sandbox: Sandbox) -> None:
    generator = world.generator_model(world.CLAMP, world.CLAMP, world.CLAMP)
    g = build(
        sandbox,
        generator_model=generator,
    )
    out, _ = await run(g, {"prompt": INITIAL, "seed_tasks": seeds(*FIVE)})

    assert len(generator.calls) == 3
    assert "Your last task repeated `clamp`" in generator.calls[-1].text
    assert [t["entry_point"] for t in out["accepted_tasks"]] == ["clamp"]
    (dup,) = out["rejected_tasks"]
    assert dup["reason"] == "duplicate of an earlier task"
    assert dup["duplicate_of"] == out["accepted_tasks"][0]["id"]


async def test_checker_disagreement_rejects_task(sandbox: Sandbox) -> None:
    g = build(
        sandbox,
        generator_model=world.generator_model(world.DEDUPE),
        checker_model=world.checker_model(disagree=["dedupe_keep_order"]),
        learner=world.learner_model(always=["rotate_left"]),
        budget=Budget(iterations=1, tasks_per_iteration=1),
    )
    out, _ = await run(g, {"prompt": INITIAL, "seed_tasks": seeds("rotate_left")})
    assert out["accepted_tasks"] == []
    [rejected] = out["rejected_tasks"]
    assert rejected["entry_point"] == "dedupe_keep_order"
    assert rejected["reason"]


@pytest.mark.parametrize(
    ("budget", "reason"),
    [
        (Budget(model_calls=2), "budget:model_calls"),
        (Budget(model_calls={"generator": 1}), "budget:model_calls"),
        (Budget(tokens=10), "budget:tokens"),
        (Budget(sandbox_seconds=0.0), "budget:sandbox_seconds"),
    ],
)
async def test_budget_exhausted(sandbox: Sandbox, budget: Budget, reason: str) -> None:
    g = build(sandbox, budget=budget)
    out, events = await run(g, {"prompt": INITIAL, "seed_tasks": seeds("rotate_left", "chunk")})
    assert out["stop_reason"] == reason
    assert events[-1] == {"event": "run_end", "stop_reason": reason, "best_prompt": INITIAL}
    assert out["iteration"] <= 1


async def test_no_errors_left_at_top_difficulty(sandbox: Sandbox) -> None:
    g = build(
        sandbox,
        generator_model=world.generator_model(world.CLAMP),
        learner=world.learner_model(always=["rotate_left", "clamp"]),
        budget=Budget(iterations=3, tasks_per_iteration=1),
    )
    out, _ = await run(g, {"prompt": INITIAL, "seed_tasks": seeds("rotate_left", difficulty=4)})
    assert out["stop_reason"] == "no_errors"
    assert out["iteration"] == 1
    assert out["difficulty"] == 5
    assert [t["entry_point"] for t in out["accepted_tasks"]] == ["clamp"]


async def test_run_store_receives_the_run(
    sandbox: Sandbox, recording_store: RecordingRunStore
) -> None:
    g = build(sandbox, run_store=recording_store)
    out, _ = await run(g, {"prompt": INITIAL, "seed_tasks": seeds(*FIVE)}, thread_id="t-1")
    calls = recording_store.calls
    assert calls[0][0] == "create_run"
    assert {c[1] for c in calls} == {"t-1"}
    assert calls[-1][0] == "finish_run"
    assert recording_store.of("finish_run")[0]["best_prompt"] == out["best_prompt"]
    statuses = {(t["task"]["id"], t["status"]) for t in recording_store.of("record_task")}
    assert {s for _, s in statuses} == {"seed", "accepted"}
    versions = recording_store.of("record_prompt_version")
    # a candidate is recorded when first evaluated, then again with its decision
    final = {v["version_id"]: v["accepted"] for v in versions}
    assert list(final.values()) == [True, True]
    promoted = versions[-1]
    assert promoted["parent_ids"] == [versions[0]["version_id"]]
    assert promoted["operator"] == "refine"
    assert promoted["meta"]["decision"]["policy"] == "statistical"
    assert promoted["meta"]["decision"]["promoted"] is True
    attempts = recording_store.of("record_attempt")
    assert any(a["prompt_version_id"] == promoted["version_id"] and a["passed"] for a in attempts)
    assert all(a["feedback"] is not None for a in attempts)
    usage = recording_store.of("record_usage")
    assert {u["role"] for u in usage} == {"learner", "generator", "checker", "optimizer"}
    assert len({u["call_id"] for u in usage}) == len(usage)


async def test_generator_sees_the_verifiers_rejections(sandbox: Sandbox) -> None:
    generator = world.generator_model(world.UNSOUND, world.CLAMP)
    g = build(
        sandbox,
        generator_model=generator,
        learner=world.learner_model(always=["rotate_left", "clamp"]),
        budget=Budget(iterations=2, tasks_per_iteration=1),
    )
    out, events = await run(g, {"prompt": INITIAL, "seed_tasks": seeds("rotate_left")})
    first, second = generator.calls
    assert "rejected by the verifier" not in first.text
    reason = out["rejected_tasks"][0]["reason"]
    assert "rejected by the verifier" in second.text
    assert reason[:60] in second.text
    starts = [e for e in events if e["event"] == "iteration_start"]
    # no task accepted in iteration 1, so iteration 2 aims at the same level
    assert [e["difficulty"] for e in starts] == [2, 2]
    assert [t["entry_point"] for t in out["accepted_tasks"]] == ["clamp"]


@pytest.mark.parametrize("allow", [False, True])
async def test_a_candidate_naming_a_training_task_is_kept_back_unless_allowed(
    sandbox: Sandbox, allow: bool
) -> None:
    # Fixes every failure and breaks nothing, but is written for one seed task.
    specific = "FIX: rotate the list with rotate_left before returning."
    g = build(
        sandbox,
        optimizer_model=world.optimizer_model(specific),
        budget=Budget(iterations=1, tasks_per_iteration=2, max_refinements=1),
        allow_specific=allow,
    )
    out, _ = await run(g, {"prompt": INITIAL, "seed_tasks": seeds(*FIVE)})

    attempt = next(h for h in out["history"] if h["kind"] == "prompt_attempt")
    decision = next(d for d in out["decisions"] if d["candidate_id"] == attempt["version_id"])
    # What the other gates decide on the same evidence is kept beside the decision.
    assert set(decision["others"]) == {"strict", "pareto"}
    assert decision["others"]["strict"]["promoted"] is True
    assert decision["others"]["pareto"]["promoted"] is True
    assert "names the task function 'rotate_left'" in attempt["feedback"]
    if allow:
        assert attempt["accepted"]
        assert out["best_prompt"] == specific
    else:
        assert not attempt["accepted"]
        assert out["best_prompt"] == INITIAL
        assert "specific to the training tasks" in attempt["reason"]
        assert decision["vetoed"] == ["names the task function 'rotate_left'"]
