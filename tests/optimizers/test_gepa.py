"""GEPA: per-task fronts and pruning, proportional parent sampling, reflective mutation
with minibatch acceptance, merges through a common ancestor, a growing task set."""

from __future__ import annotations

import random
from collections import Counter

from sipdo.plugins.optimizers import pareto
from sipdo.plugins.optimizers.gepa import GEPAStrategy
from sipdo.plugins.optimizers.scores import Table
from sipdo.testing import ScriptedChatModel
from tests.optimizers.flows import candidate, row, run, world

T4 = ["t1", "t2", "t3", "t4"]


def table(rows: dict[str, str], tasks: list[str] = T4) -> Table:
    return {cid: row(marks, tasks) for cid, marks in rows.items()}


def rules(text: str, task_id: str) -> bool:
    """t1 always passes; tN (N>1) passes when the prompt holds ``RULE-N``."""
    return task_id == "t1" or f"RULE-{task_id[1:]}" in text


def reflection(prompt: str) -> str:
    return f"<prompt>\n{prompt}\n</prompt>\nRATIONALE: from the feedback"


# -- the front ------------------------------------------------------------------------


def test_fronts_hold_the_best_per_task_and_dominated_candidates_are_pruned() -> None:
    tab = table({"A": "1100", "B": "1000", "C": "0011", "Z": "0000"})
    fronts = pareto.task_fronts(tab, ["A", "B", "C", "Z"], T4)
    assert fronts == {"t1": ["A", "B"], "t2": ["A"], "t3": ["C"], "t4": ["C"]}
    kept, removed = pareto.remove_dominated(fronts, {"A": 0.5, "B": 0.25, "C": 0.5})
    assert removed == ["B"]  # every front B is on also holds A
    assert pareto.sampling_weights(kept) == {"A": 2, "C": 2}


def test_of_two_identical_rows_the_weaker_aggregate_is_pruned_first() -> None:
    fronts = pareto.task_fronts(table({"A": "1100", "D": "1100"}), ["A", "D"], T4)
    kept, removed = pareto.remove_dominated(fronts, {"A": 0.6, "D": 0.4})
    assert removed == ["D"]
    assert pareto.sampling_weights(kept) == {"A": 2}


def test_parents_are_sampled_in_proportion_to_the_tasks_they_are_best_on() -> None:
    rng = random.Random(7)
    draws = Counter(pareto.sample_parent({"A": 3, "C": 1}, rng) for _ in range(4000))
    assert 0.72 < draws["A"] / 4000 < 0.78


# -- reflective mutation --------------------------------------------------------------


def test_reflective_mutation_is_kept_only_after_beating_the_parent_on_the_minibatch() -> None:
    view = world([candidate("p0", "Solve.")], {"p0": "1000"}, T4, seed=1)
    model = ScriptedChatModel([reflection("Solve.\nRULE-2 RULE-3 RULE-4")])
    out = run(GEPAStrategy(minibatch=2).step(view), view, model, rules)
    ask = str(out.asks[0].messages[-1].content)
    assert "wrong on t" in ask  # the parent's traces and the verifier's feedback
    first, full = out.evaluations
    assert len(first.task_ids) == 2
    assert any(t != "t1" for t in first.task_ids)  # the minibatch holds a failure
    assert set(first.task_ids) | set(full.task_ids) == set(T4)  # then every task
    sel = out.selection
    child = out.new[sel.candidate or ""]
    assert child.operator == "reflect:instructions"
    assert child.parent_ids == ["p0"]
    assert sel.state["pool"] == ["p0", child.id]
    assert sel.state["merges_due"] == 1
    assert sel.notes["weights"] == {"p0": 1}
    assert sel.notes["front"] == T4  # the child leads on every task (shown by `sipdo show`)


def test_a_child_no_better_on_the_minibatch_is_rejected_without_full_evaluation() -> None:
    view = world([candidate("p0", "Solve.")], {"p0": "1000"}, T4, seed=1)
    model = ScriptedChatModel([reflection("Solve carefully.")])
    out = run(GEPAStrategy(minibatch=2).step(view), view, model, rules)
    assert out.selection.candidate is None
    assert "minibatch" in (out.selection.error or "")
    assert len(out.evaluations) == 1


def test_with_as_many_passes_more_partial_credit_on_the_minibatch_keeps_the_child() -> None:
    # A weak learner: no task passes under either prompt, but the child's answers get
    # more of their checks right on t2..t4. Pass counts tie (0 vs 0); partial credit
    # decides, and the child goes on to the full evaluation.
    def partial(text: str, task_id: str) -> bool | float:
        if task_id == "t1":
            return 0.0
        return 0.6 if "RULE" in text else 0.2

    view = world([candidate("p0", "Solve.")], {"p0": "0000"}, T4, seed=1)
    model = ScriptedChatModel([reflection("Solve.\nRULE: check the empty input first.")])
    out = run(GEPAStrategy(minibatch=2).step(view), view, model, partial)
    first, full = out.evaluations
    assert set(first.task_ids) | set(full.task_ids) == set(T4)  # then every task
    scores = out.selection.notes["minibatch_scores"]
    assert scores["parent"] == scores["child"] == 0
    assert scores["credit"]["child"] > scores["credit"]["parent"]
    assert out.selection.candidate in out.new


def test_as_many_passes_and_no_more_partial_credit_is_rejected() -> None:
    def partial(text: str, task_id: str) -> bool | float:
        return 1.0 if task_id == "t1" else 0.0  # the rewrite changes nothing

    view = world([candidate("p0", "Solve.")], {"p0": "1000"}, T4, seed=1)
    model = ScriptedChatModel([reflection("Solve, carefully.")])
    out = run(GEPAStrategy(minibatch=2).step(view), view, model, partial)
    assert out.selection.candidate is None
    assert "partial credit" in (out.selection.error or "")
    assert len(out.evaluations) == 1


def test_a_component_copied_back_unchanged_gets_one_turn_asking_for_a_change() -> None:
    view = world([candidate("p0", "Solve.")], {"p0": "1000"}, T4, seed=1)
    model = ScriptedChatModel([reflection("Solve."), reflection("Solve.\nRULE-2 RULE-3 RULE-4")])
    out = run(GEPAStrategy(minibatch=2).step(view), view, model, rules)
    first, again = out.asks
    assert again.messages[: len(first.messages)] == first.messages
    assert "Solve." in str(again.messages[-2].content)  # its own reply, then the request
    assert "That is the component unchanged" in str(again.messages[-1].content)
    child = out.new[out.selection.candidate or ""]
    assert child.text == "Solve.\nRULE-2 RULE-3 RULE-4"


def test_unchanged_twice_asks_for_one_rule_and_appends_it() -> None:
    view = world([candidate("p0", "Solve.")], {"p0": "1000"}, T4, seed=1)
    model = ScriptedChatModel(
        [reflection("Solve."), reflection(" Solve. "), "RULE: mind RULE-2 RULE-3 RULE-4"]
    )
    out = run(GEPAStrategy(minibatch=2).step(view), view, model, rules)
    *_, lesson = out.asks
    assert "instructions unchanged (also after a turn asking for a change)" in str(
        lesson.messages[-1].content
    )
    assert "ONE new general rule" in str(lesson.messages[-1].content)
    child = out.new[out.selection.candidate or ""]
    assert child.text == "Solve.\nmind RULE-2 RULE-3 RULE-4"  # the component kept whole
    assert child.operator == "reflect:instructions"
    assert child.notes["fallback"] == "rule appended"
    assert child.rationale.startswith("one rule appended")


def test_no_usable_rule_either_is_no_candidate_with_every_reason() -> None:
    view = world([candidate("p0", "Solve.")], {"p0": "1000"}, T4, seed=1)
    # unchanged twice, then a rule the component already has
    model = ScriptedChatModel(
        [reflection("Solve."), reflection("Solve."), "RULE: solve", "RULE: Solve!"]
    )
    out = run(GEPAStrategy(minibatch=2).step(view), view, model, rules)
    assert out.selection.candidate is None
    error = out.selection.error or ""
    assert error.startswith("instructions unchanged (also after a turn asking for a change)")
    assert "no rule to append either: the prompt already has the rule 'Solve!'" in error
    assert error.endswith("also when asked for another")
    assert not out.new  # no child made, none evaluated


def test_an_unreadable_reflection_falls_back_to_one_rule() -> None:
    view = world([candidate("p0", "Solve.")], {"p0": "1000"}, T4, seed=1)
    # no <prompt> block (nor after the format's two retries), then a rule on one line
    model = ScriptedChatModel(["It is fine.", "Still fine.", "Fine.", "RULE-2 RULE-3 RULE-4"])
    out = run(GEPAStrategy(minibatch=2).step(view), view, model, rules)
    child = out.new[out.selection.candidate or ""]
    assert child.text == "Solve.\nRULE-2 RULE-3 RULE-4"  # a one-line reply is the rule
    assert "reflection unusable" in child.rationale


def test_components_are_mutated_one_at_a_time_in_round_robin() -> None:
    comps = {"instructions": "Solve.", "demos": "Example: none."}
    view = world([candidate("p0", comps)], {"p0": "1000"}, T4, seed=2)
    model = ScriptedChatModel([reflection("RULE-2 RULE-3 RULE-4")] * 2)
    strategy = GEPAStrategy(minibatch=4)
    first = run(strategy.step(view), view, model, rules)
    assert first.new[first.selection.candidate or ""].operator == "reflect:instructions"
    again = world([candidate("p0", comps)], {"p0": "1000"}, T4, state=first.selection.state)
    second = run(strategy.step(again), again, model, rules)
    child = second.new[second.selection.candidate or ""]
    assert child.operator == "reflect:demos"
    assert child.components == {"instructions": "Solve.", "demos": "RULE-2 RULE-3 RULE-4"}


def test_pool_candidates_are_scored_on_tasks_added_since() -> None:
    tasks = [*T4, "t5"]
    cands = [candidate("p0", "Solve."), candidate("p1", "RULE-2", ["p0"])]
    view = world(cands, {"p0": "10001", "p1": "1100."}, tasks, state={"pool": ["p0", "p1"]})
    model = ScriptedChatModel([reflection("Solve.\nRULE-3 RULE-4")])
    out = run(GEPAStrategy().step(view), view, model, rules)
    grow = out.evaluations[0]
    assert grow.candidates == ["p1"]
    assert list(grow.task_ids) == ["t5"]
    # p1 (t1, t2) and p0 (t1, t5) each lead somewhere: both stay on the front
    assert out.selection.notes["weights"] == {"p0": 2, "p1": 2}


# -- merge ------------------------------------------------------------------------------


def merge_world(rows: dict[str, str]) -> object:
    anc = candidate("A", {"instructions": "I0", "demos": "D0"})
    x = candidate("X", {"instructions": "I1 RULE-2", "demos": "D0"}, ["A"])
    y = candidate("Y", {"instructions": "I0", "demos": "D1 RULE-3"}, ["A"])
    state = {"pool": ["A", "X", "Y"], "merges_due": 1}
    return world([anc, x, y], rows, T4, state=state, seed=4)


def test_merge_takes_per_component_the_version_that_changed() -> None:
    view = merge_world({"A": "1000", "X": "1100", "Y": "1010"})
    out = run(GEPAStrategy().step(view), view, ScriptedChatModel([]), rules)  # type: ignore[arg-type]
    assert not out.asks  # a merge needs no model call
    sel = out.selection
    merged = out.new[sel.candidate or ""]
    assert merged.operator == "merge"
    assert merged.parent_ids == ["X", "Y"]
    assert merged.components == {"instructions": "I1 RULE-2", "demos": "D1 RULE-3"}
    assert sel.notes["merge"]["ancestor"] == "A"
    assert sel.notes["merge"]["taken"] == {"instructions": "X", "demos": "Y"}
    assert sel.notes["dominated"] == ["A"]  # t1 is also held by X and Y
    assert sel.state["merges_performed"] == [["X", "Y", "A"]]
    assert sel.state["merges_due"] == 0
    sub = sel.notes["merge"]["subsample"]
    assert sub["merged"] >= sub["best_parent"]


def test_a_merge_worse_than_the_better_parent_on_the_subsample_is_rejected() -> None:
    view = merge_world({"A": "1000", "X": "1100", "Y": "1010"})

    def clash(text: str, task_id: str) -> bool:  # the two changes break each other
        return "I1" not in text or "D1" not in text

    out = run(GEPAStrategy().step(view), view, ScriptedChatModel([]), clash)  # type: ignore[arg-type]
    assert out.selection.candidate is None
    assert "merge: scores 0" in (out.selection.error or "")


def test_when_both_changed_a_component_the_better_parent_wins() -> None:
    rng = random.Random(0)
    anc, a, b = {"i": "0", "d": "0"}, {"i": "a", "d": "0"}, {"i": "b", "d": "0"}
    merged, source = pareto.merge_components(anc, a, b, 0.4, 0.6, rng)
    assert merged == {"i": "b", "d": "0"}
    assert source["i"] == "b"
    # no component changed by exactly one side: not a merge GEPA would try
    assert not pareto.desirable(anc, a, b)
    assert pareto.desirable(anc, a, {"i": "0", "d": "x"})


def test_no_merge_between_a_candidate_and_its_own_ancestor() -> None:
    cands = {
        "A": candidate("A", {"i": "0", "d": "0"}),
        "X": candidate("X", {"i": "1", "d": "0"}, ["A"]),
        "XX": candidate("XX", {"i": "1", "d": "1"}, ["X"]),
    }
    agg = {"A": 0.1, "X": 0.5, "XX": 0.6}
    assert pareto.find_merge(["X", "XX"], cands, agg, [], random.Random(0)) is None
    assert pareto.ancestors("XX", cands) == {"X", "A"}
