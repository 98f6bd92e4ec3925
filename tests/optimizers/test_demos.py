"""Verified demonstrations as a candidate component: bounds, hygiene, and the two
strategies that mutate it (``sipdo`` beside its refinement, ``gepa`` in its round robin)."""

from __future__ import annotations

from typing import Any

import pytest

from sipdo.errors import ConfigurationError
from sipdo.plugins.optimizers.base import OptimizerView
from sipdo.plugins.optimizers.candidates import (
    DEMONSTRATIONS,
    INSTRUCTIONS,
    candidate_id,
    demonstration_ids,
    render,
    specificity_flags,
)
from sipdo.plugins.optimizers.demos import DemoSettings, propose, refusals
from sipdo.plugins.optimizers.gepa import GEPAStrategy
from sipdo.plugins.optimizers.sipdo import SipdoStrategy
from sipdo.testing import ScriptedChatModel
from tests.graph.world import optimizer_script
from tests.optimizers.flows import candidate, run, world

T4 = ["t1", "t2", "t3", "t4"]
ON = DemoSettings(limit=3, token_budget=100)


def demo(did: str, task_id: str, tokens: int = 10, weakness: str = "edge cases") -> dict[str, Any]:
    task = {"id": task_id, "prompt": f"solve {task_id}", "weakness": weakness}
    return {"id": did, "task_id": task_id, "task": task, "reply": f"ok {task_id}", "tokens": tokens}


POOL = {d["id"]: d for d in (demo("d1", "t1"), demo("d2", "t2"), demo("d3", "t3"))}


def with_demos(view: OptimizerView, pool: dict[str, Any], limit: int = 3) -> OptimizerView:
    data = {**view.data, "demonstrations": pool, "demo_limit": limit, "demo_tokens": 100}
    return OptimizerView(data, view.describe)


def test_demonstrations_are_not_prompt_text_but_change_the_candidate() -> None:
    plain = {INSTRUCTIONS: "Solve."}
    shown = {**plain, DEMONSTRATIONS: "d1\nd2"}
    assert render(shown) == render(plain) == "Solve."
    assert demonstration_ids(shown) == ["d1", "d2"]
    assert candidate_id(shown, ["p"]) != candidate_id(plain, ["p"])
    # the id of a candidate without demonstrations is what it always was
    assert candidate_id(plain, ["p"]) == candidate_id({INSTRUCTIONS: "Solve."}, ["p"])


def test_a_held_out_task_is_refused_whatever_else_holds() -> None:
    pool = {**POOL, "dh": {**demo("dh", "t9"), "key": "k-heldout"}}
    verified = {"t1", "t2", "t3", "t9"}  # even if it was also given as a training task
    assert refusals(["d1", "d2"], pool, verified, held_out={"t4"}, settings=ON) == []
    by_id = refusals(["d1", "dh"], pool, verified, held_out={"t9"}, settings=ON)
    assert by_id == ["dh shows the held-out task t9"]
    by_key = refusals(["dh"], pool, verified, held_out={"k-heldout"}, settings=ON)
    assert by_key == ["dh shows the held-out task t9"]


def test_bounds_and_unknown_ids_are_refused() -> None:
    verified = {"t1", "t2", "t3"}
    pool = {**POOL, "big": demo("big", "t3", tokens=95), "again": demo("again", "t1")}
    assert refusals(["d1", "d2", "d3"], pool, verified, held_out=(), settings=ON) == []
    too_many = refusals(["d1", "d2", "d3"], pool, verified, held_out=(), settings=DemoSettings(2))
    assert too_many == ["3 demonstrations, more than the 2 allowed"]
    assert refusals(["d1", "big"], pool, verified, held_out=(), settings=ON) == [
        "105 estimated tokens of demonstrations, over the 100"
    ]
    assert refusals(["zz"], pool, verified, held_out=(), settings=ON) == [
        "zz is not a verified demonstration of this run"
    ]
    assert refusals(["d1", "again"], pool, verified, held_out=(), settings=ON) == [
        "again repeats the task t1"
    ]
    assert (
        "not a verified training task"
        in refusals(["d3"], pool, {"t1"}, held_out=(), settings=ON)[0]
    )
    with pytest.raises(ConfigurationError, match=r"demonstrations must be 0\.\.16"):
        DemoSettings(limit=-1)


def test_propose_adds_then_swaps_then_removes_within_the_budget() -> None:
    verified = {"t1", "t2", "t3"}
    two = DemoSettings(limit=2, token_budget=100)
    assert propose(POOL, verified, [], settings=DemoSettings(0)) is None
    assert propose(POOL, verified, [], settings=two) == (["d1"], "add_demonstration")
    assert propose(POOL, verified, ["d1", "d2"], settings=two) == (
        ["d2", "d3"],
        "swap_demonstration",
    )
    assert propose(POOL, verified, ["d1"], settings=DemoSettings(1, 100), prefer=()) == (
        ["d2"],
        "swap_demonstration",
    )
    assert propose({"d1": POOL["d1"]}, verified, ["d1"], settings=DemoSettings(1, 100)) == (
        [],
        "remove_demonstration",
    )
    # a demonstration of a weakness the parent fails on comes first; the budget is kept
    pool = {**POOL, "dw": demo("dw", "t3", weakness="empty input")}
    assert propose(pool, verified, [], settings=two, prefer={"empty input"}) == (
        ["dw"],
        "add_demonstration",
    )
    tight = DemoSettings(limit=3, token_budget=15)
    assert propose(POOL, verified, ["d1"], settings=tight) == (
        ["d2"],
        "swap_demonstration",
    )


def test_the_specificity_flagger_reads_only_the_instructions() -> None:
    # A demonstration is specific by design; only instructions are flagged.
    tasks = [{"entry_point": "merge_intervals", "tests": "assert f(12345) == 1"}]
    assert specificity_flags("Solve it.", tasks) == []
    assert specificity_flags("Use merge_intervals.", tasks)


def shows_demonstrations(text: str, task_id: str) -> bool:
    """t1 always passes; the others pass once the candidate carries a demonstration."""
    return task_id == "t1" or "[demonstrations]" in text


def test_sipdo_puts_the_demonstration_change_forward_when_it_does_better() -> None:
    base = world([candidate("p0", "Solve.")], {"p0": "1000"}, T4)
    view = with_demos(base, {"d1": POOL["d1"]})
    model = ScriptedChatModel(optimizer_script("Solve. Think."))
    out = run(SipdoStrategy().step(view), view, model, shows_demonstrations)
    [evaluation] = out.evaluations
    refined, shown = evaluation.candidates
    assert refined.operator == "refine"  # type: ignore[union-attr]
    assert shown.operator == "add_demonstration"  # type: ignore[union-attr]
    assert out.selection.candidate == shown.id  # type: ignore[union-attr]
    assert out.new[shown.id].components[DEMONSTRATIONS] == "d1"  # type: ignore[union-attr]
    assert out.selection.notes["pass_rates"] == {refined.id: 0.25, shown.id: 1.0}  # type: ignore[union-attr]


def test_sipdo_without_demonstrations_evaluates_only_its_refinement() -> None:
    view = world([candidate("p0", "Solve.")], {"p0": "1000"}, T4)
    model = ScriptedChatModel(optimizer_script("Solve. Think."))
    out = run(SipdoStrategy().step(view), view, model, shows_demonstrations)
    [evaluation] = out.evaluations
    assert len(evaluation.candidates) == 1


def test_gepa_round_robin_reaches_the_demonstrations_component_without_a_model_call() -> None:
    base = world(
        [candidate("p0", "Solve.")], {"p0": "1000"}, T4, state={"next_component": {"p0": 1}}
    )
    view = with_demos(base, {"d2": POOL["d2"]})
    model = ScriptedChatModel([])  # fails loudly if asked
    out = run(GEPAStrategy(minibatch=4).step(view), view, model, shows_demonstrations)
    child = out.new[out.selection.candidate or ""]
    assert child.operator == f"reflect:{DEMONSTRATIONS}"
    assert child.components == {INSTRUCTIONS: "Solve.", DEMONSTRATIONS: "d2"}
    assert child.notes["change"] == "add_demonstration"
    assert out.asks == []


def test_gepa_keeps_a_demonstration_change_only_if_it_beats_the_parent() -> None:
    base = world(
        [candidate("p0", "Solve.")], {"p0": "1000"}, T4, state={"next_component": {"p0": 1}}
    )
    view = with_demos(base, {"d2": POOL["d2"]})
    out = run(
        GEPAStrategy(minibatch=4).step(view), view, ScriptedChatModel([]), lambda _, t: t == "t1"
    )
    assert out.selection.candidate is None
    assert "minibatch" in (out.selection.error or "")
