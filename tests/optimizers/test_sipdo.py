"""The sipdo strategy: error analysis -> recommendation -> refinement, and the one-rule
fallback when a weak optimizer copies the prompt back or writes no usable prompt."""

from __future__ import annotations

from sipdo.plugins.optimizers.sipdo import SipdoStrategy
from sipdo.testing import ScriptedChatModel
from tests.optimizers.flows import candidate, run, world

T3 = ["t1", "t2", "t3"]
ANALYSIS = {"failure_modes": [{"pattern": "edges", "cause": "no empty input", "task_ids": ["t2"]}]}
RECOMMEND = {"recommendations": ["handle the empty input"]}


def rules(text: str, task_id: str) -> bool:
    """t1 always passes; t2 and t3 pass when the prompt mentions empty inputs."""
    return task_id == "t1" or "empty" in text


def refinement(prompt: str) -> str:
    return f"<prompt>\n{prompt}\n</prompt>\nRATIONALE: from the failures"


def test_a_refinement_becomes_the_candidate_evaluated_on_every_task() -> None:
    view = world([candidate("p0", "Solve.")], {"p0": "100"}, T3)
    model = ScriptedChatModel([ANALYSIS, RECOMMEND, refinement("Solve. Mind empty inputs.")])
    out = run(SipdoStrategy().step(view), view, model, rules)
    assert len(out.asks) == 3
    child = out.new[out.selection.candidate or ""]
    assert child.text == "Solve. Mind empty inputs."
    assert child.operator == "refine"
    assert child.parent_ids == ["p0"]
    assert "fallback" not in child.notes
    (evaluation,) = out.evaluations
    assert list(evaluation.task_ids) == T3


def test_a_prompt_copied_back_is_followed_by_one_rule_appended() -> None:
    view = world([candidate("p0", "Solve.")], {"p0": "100"}, T3)
    model = ScriptedChatModel(
        [ANALYSIS, RECOMMEND, refinement(" Solve. "), "RULE: Check empty inputs first."]
    )
    out = run(SipdoStrategy().step(view), view, model, rules)
    lesson = out.asks[-1]
    asked = str(lesson.messages[-1].content)
    assert "the rewritten prompt is identical to the current one" in asked
    assert "ONE new general rule" in asked
    child = out.new[out.selection.candidate or ""]
    assert child.text == "Solve.\nCheck empty inputs first."  # the prompt kept whole
    assert child.notes["fallback"] == "rule appended"
    assert child.rationale.startswith("one rule appended")
    assert child.notes["recommendations"] == ["handle the empty input"]


def test_an_unreadable_refinement_also_falls_back_to_one_rule() -> None:
    view = world([candidate("p0", "Solve.")], {"p0": "100"}, T3)
    model = ScriptedChatModel(
        [ANALYSIS, RECOMMEND, "no tags", "still none", "nope", "RULE: Handle empty lists."]
    )
    out = run(SipdoStrategy().step(view), view, model, rules)
    child = out.new[out.selection.candidate or ""]
    assert child.text == "Solve.\nHandle empty lists."
    assert "refinement unusable" in child.rationale


def test_no_rule_either_is_no_candidate_with_both_reasons() -> None:
    view = world([candidate("p0", "Solve.\nHandle empty lists.")], {"p0": "100"}, T3)
    model = ScriptedChatModel(
        [
            ANALYSIS,
            RECOMMEND,
            refinement("Solve.\nHandle empty lists."),
            "RULE: handle EMPTY lists",
            "RULE: Handle empty lists.",  # asked for another: the same again
        ]
    )
    out = run(SipdoStrategy().step(view), view, model, rules)
    sel = out.selection
    assert sel.candidate is None
    assert sel.error is not None
    assert sel.error.startswith("the rewritten prompt is identical to the current one;")
    assert "already has the rule 'Handle empty lists.', also when asked for another" in sel.error
    assert not out.evaluations  # nothing new was shown to the solver


def attempt(cid: str, fixed: list[str], broken: list[str]) -> dict[str, object]:
    return {"kind": "prompt_attempt", "version_id": cid, "fixed": fixed, "broken": broken}


def test_a_promising_kept_back_candidate_is_refined_further() -> None:
    # p1 fixed two tasks and broke one: kept back for lack of evidence, but its rules stay,
    # and the next refinement adds to them (p2 fixed as many as it broke: not built on)
    p0, p1 = candidate("p0", "Solve."), candidate("p1", "Solve.\nMind empty.", parents=["p0"])
    p2 = candidate("p2", "Solve.\nBe brief.", parents=["p0"])
    view = world([p0, p1, p2], {"p0": "100", "p1": "011", "p2": "010"}, T3)
    view.data["attempts"] = [attempt("p1", ["t2", "t3"], ["t1"]), attempt("p2", ["t2"], ["t1"])]
    model = ScriptedChatModel(
        [ANALYSIS, RECOMMEND, refinement("Solve.\nMind empty.\nKeep t1's case.")]
    )
    out = run(SipdoStrategy().step(view), view, model, rules)
    assert "<<<\nSolve.\nMind empty.\n>>>" in str(out.asks[-1].messages[-1].content)
    child = out.new[out.selection.candidate or ""]
    assert child.parent_ids == ["p1"]
    assert child.notes["built_on"] == "p1"


def test_without_a_promising_attempt_the_incumbent_is_refined() -> None:
    p0, p1 = candidate("p0", "Solve."), candidate("p1", "Solve.\nBe brief.", parents=["p0"])
    view = world([p0, p1], {"p0": "100", "p1": "010"}, T3)
    view.data["attempts"] = [attempt("p1", ["t2"], ["t1"])]
    model = ScriptedChatModel([ANALYSIS, RECOMMEND, refinement("Solve. Mind empty inputs.")])
    out = run(SipdoStrategy().step(view), view, model, rules)
    assert "<<<\nSolve.\n>>>" in str(out.asks[-1].messages[-1].content)
    child = out.new[out.selection.candidate or ""]
    assert child.parent_ids == ["p0"]
    assert "built_on" not in child.notes


def test_after_a_promotion_earlier_gains_no_longer_count() -> None:
    # p1 gained against the old incumbent p0; p3 was promoted after it: refine p3
    p0, p1 = candidate("p0", "Solve."), candidate("p1", "Solve.\nMind empty.", parents=["p0"])
    p3 = candidate("p3", "Solve.\nCheck types.", parents=["p0"])
    view = world([p0, p1, p3], {"p3": "110", "p1": "011"}, T3, incumbent="p3")
    promoted = {**attempt("p3", ["t2"], []), "accepted": True}
    view.data["attempts"] = [attempt("p1", ["t2", "t3"], ["t1"]), promoted]
    model = ScriptedChatModel([ANALYSIS, RECOMMEND, refinement("Solve.\nCheck types.\nMore.")])
    out = run(SipdoStrategy().step(view), view, model, rules)
    assert out.new[out.selection.candidate or ""].parent_ids == ["p3"]
