"""E-SPL: TrueSkill ratings from each round's ranking, mu + lambda*sigma selection,
mutation and crossover as diff edits, inherited ratings, malformed diffs rejected."""

from __future__ import annotations

import math

import pytest
import trueskill

from sipdo.plugins.optimizers.diffedit import DiffError, apply_diff, parse_edits
from sipdo.plugins.optimizers.espl import ESPLStrategy, inherit, optimistic, rate
from sipdo.testing import ScriptedChatModel
from tests.optimizers.flows import candidate, run, world

T4 = ["t1", "t2", "t3", "t4"]


def diff(search: str, replace: str) -> str:
    return f"Lessons: be careful.\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def rules(text: str, task_id: str) -> bool:
    return task_id == "t1" or f"RULE-{task_id[1:]}" in text


# -- diff edits -------------------------------------------------------------------------


def test_search_replace_blocks_apply_in_order() -> None:
    prompt = "Solve the task.\nAnswer in Python.\n"
    reply = diff("Answer in Python.", "Answer in Python.\nCheck empty inputs.") + diff(
        "Solve the task.", "Solve the task step by step."
    )
    assert len(parse_edits(reply)) == 2
    assert apply_diff(prompt, reply) == (
        "Solve the task step by step.\nAnswer in Python.\nCheck empty inputs."
    )
    # re-indented SEARCH lines still match; an empty SEARCH appends
    assert apply_diff("  Solve.\n  Go.", diff("Solve.\nGo.", "Solve well.")) == "Solve well."
    assert apply_diff("Solve.", diff("", "New rule.")) == "Solve.\nNew rule."


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("Just use better words.", "no SEARCH/REPLACE block"),
        ("<<<<<<< SEARCH\nSolve.\n=======\nSolve well.\n", "not closed"),
        ("=======\nx\n>>>>>>> REPLACE", "REPLACE marker without SEARCH"),
        (diff("Write Java.", "Write Rust."), "edit 1: the SEARCH text is not in the prompt"),
        (diff("Solve.", "Solve it."), "edit 1: the SEARCH text occurs 2 times"),
        (diff("Solve.\nSolve.", ""), "leave the prompt empty"),
        (diff("Solve.\nSolve.", "Solve.\nSolve."), "change nothing"),
    ],
)
def test_malformed_diffs_are_refused_with_the_reason(reply: str, reason: str) -> None:
    with pytest.raises(DiffError, match=reason):
        apply_diff("Solve.\nSolve.", reply)


# -- ratings --------------------------------------------------------------------------


def test_trueskill_orders_players_by_their_rankings_over_rounds() -> None:
    env = trueskill.TrueSkill(draw_probability=0.1)
    ratings = {p: (env.mu, env.sigma) for p in "abc"}
    for scores in ({"a": 1.0, "b": 0.5, "c": 0.0}, {"a": 0.75, "b": 0.75, "c": 0.25}):
        ratings = rate(ratings, scores, env)
    assert ratings["a"][0] > ratings["b"][0] > ratings["c"][0]
    assert all(r[1] < env.sigma for r in ratings.values())  # more certain after two rounds
    assert rate({"a": (25.0, 8.0)}, {"a": 1.0}, env) == {"a": (25.0, 8.0)}  # nobody to rank


def test_children_inherit_ratings_with_added_sigma() -> None:
    mu, sigma = inherit([(30.0, 4.0)], [1.0], 2.0)
    assert (mu, sigma) == (30.0, math.sqrt(16 + 4))
    mu, sigma = inherit([(30.0, 4.0), (20.0, 2.0)], [3.0, 1.0], 1.0)
    assert mu == pytest.approx(27.5)
    assert sigma == pytest.approx(math.sqrt(0.75 * 16 + 0.25 * 4 + 1))


# -- the flow -------------------------------------------------------------------------


def population_view(decided: tuple[str, ...] = ()) -> object:
    cands = [
        candidate("p0", "Solve."),
        candidate("sure", "Solve.\nRULE-2", ["p0"]),
        candidate("unsure", "Solve.\nRULE-3", ["p0"]),
    ]
    ratings = {"p0": [25.0, 1.0], "sure": [27.0, 1.0], "unsure": [24.0, 6.0]}
    state = {"population": ["p0", "sure", "unsure"], "ratings": ratings, "round": 2}
    rows = {"p0": "1000", "sure": "1100", "unsure": "1010"}
    decisions = [{"candidate_id": c, "promoted": False} for c in decided]
    return world(cands, rows, T4, state=state, decisions=decisions, seed=5)


def test_a_round_rates_by_rank_and_evolves_by_diff_edits() -> None:
    view = population_view()
    mutation = diff("Solve.\nRULE-3", "Solve.\nRULE-3 RULE-4")
    crossover = diff("Solve.\nRULE-3", "Solve.\nRULE-2 RULE-3 RULE-4")
    model = ScriptedChatModel([mutation, crossover])
    strategy = ESPLStrategy(active=2, population=4, batch_size=4, lam=1.0, crossover_parents=2)
    out = run(strategy.step(view), view, model, rules)  # type: ignore[arg-type]
    # mu + sigma: unsure 30 > sure 28 > p0 26; the incumbent always plays
    first = out.evaluations[0]
    assert first.candidates == ["unsure", "p0"]
    assert list(first.task_ids) == T4
    sel = out.selection
    ratings = sel.notes["ratings"]
    assert ratings["unsure"][0] > 24.0  # beat the incumbent on the batch: rating up
    assert ratings["p0"][0] < 25.0
    # the mutation edits the round's best (unsure) from its failures (t2, t4)
    assert "RULE-3" in str(out.asks[0].messages[-1].content)
    assert "t2: bad t2\n\nt4: bad t4" in str(out.asks[0].messages[-1].content)
    # the crossover sees the per-task score rows of its parents
    cross = str(out.asks[1].messages[-1].content)
    assert "unsure | 1 0 1 0" in cross
    assert "p0 | 1 0 0 0" in cross
    kids = {c.operator: c for c in out.new.values()}
    assert kids["mutation"].parent_ids == ["unsure"]
    assert kids["crossover"].parent_ids == ["unsure", "p0"]
    assert kids["crossover"].text == "Solve.\nRULE-2 RULE-3 RULE-4"
    # the crossover child solves all four: it is put forward
    assert sel.candidate == kids["crossover"].id
    # children inherit: mutation = the parent's mu (after this round), sigma widened
    parent = sel.state["ratings"]["unsure"]
    child = sel.state["ratings"][kids["mutation"].id]
    assert child[0] == pytest.approx(parent[0])
    assert child[1] == pytest.approx(math.sqrt(parent[1] ** 2 + 4))
    assert kids["mutation"].notes["rating"] == {
        "mu": round(child[0], 3),
        "sigma": round(child[1], 3),
    }
    assert sel.notes["rating"] == kids["crossover"].notes["rating"]  # shown by `sipdo show`
    # population capped at 4, best by mu; the incumbent stays
    assert len(sel.state["population"]) == 4
    assert "p0" in sel.state["population"]
    assert sel.state["round"] == 3


def test_a_malformed_diff_is_a_rejected_candidate_with_its_reason() -> None:
    """Each malformed diff gets one repair turn, then a request for one rule; with no
    usable rule either it is a rejected candidate with every reason, with one the rule
    is appended as an edit with an empty SEARCH part."""
    view = population_view(decided=("unsure",))  # already rejected by the gate: not again
    template = diff("(lines copied exactly from the prompt)", "(the new lines)")
    model = ScriptedChatModel(
        [
            "Add more rules please.",  # the mutation
            diff("Not in it.", "x"),  # the crossover
            template,  # the mutation's repair: the template copied
            "RULE: rule-3.",  # the mutation's rule: the prompt has it already
            "RULE: Rule 3",  # asked for another: the same again
            diff("", "<one new rule>"),  # the crossover's repair: the example copied
            "Lessons: t4 failed.\nRULE: RULE-2 RULE-4",  # the crossover's rule
        ]
    )
    strategy = ESPLStrategy(active=2, crossover_parents=2)
    out = run(strategy.step(view), view, model, rules)  # type: ignore[arg-type]
    [reason] = [r["reason"] for r in out.selection.notes["rejected"]]
    assert reason.startswith("edit 1 copies the format's placeholder")
    assert "(after a repair turn; first: no SEARCH/REPLACE block in the reply)" in reason
    assert reason.endswith(
        "no rule to append either: the prompt already has the rule 'Rule 3', "
        "also when asked for another"
    )
    # the repair turn carries the reason, the bad reply and the layout on the prompt's
    # own last line
    repair = out.asks[2].messages
    assert repair[-2].content == "Add more rules please."
    shown = str(repair[-1].content)
    assert "cannot be applied: no SEARCH/REPLACE block in the reply" in shown
    assert "<<<<<<< SEARCH\nRULE-3\n=======\nRULE-3\n<one new rule>" in shown
    # the mutation's second rule request names the rule the prompt has
    assert "The prompt already says: rule-3." in str(out.asks[4].messages[-1].content)
    # the rule request follows the repair turn, with every reason so far
    asked = str(out.asks[6].messages[-1].content)
    assert "copies the format's placeholder '<one new rule>'" in asked
    assert "first: edit 1: the SEARCH text is not in the prompt" in asked
    assert "ONE new general rule" in asked
    # the crossover's rule made the child, a diff edit that appends
    [child] = out.new.values()
    assert child.operator == "crossover"
    assert child.text == "Solve.\nRULE-3\nRULE-2 RULE-4"
    assert child.notes["fallback"] == "rule appended"
    assert child.notes["diff"] == "<<<<<<< SEARCH\n=======\nRULE-2 RULE-4\n>>>>>>> REPLACE"
    assert out.selection.candidate == child.id
    # the round's ratings still count
    assert out.selection.state["ratings"]["unsure"][0] > 24.0


def test_a_diff_repaired_after_its_reason_makes_a_child() -> None:
    view = population_view(decided=("unsure",))
    model = ScriptedChatModel(
        [
            "Lessons: check more.",  # the mutation: no block
            diff("Solve.\nRULE-3", "Solve.\nRULE-2 RULE-3 RULE-4"),  # the crossover
            diff("RULE-3", "RULE-3\nRULE-4"),  # the mutation's repair applies
        ]
    )
    strategy = ESPLStrategy(active=2, crossover_parents=2)
    out = run(strategy.step(view), view, model, rules)  # type: ignore[arg-type]
    kids = {c.operator: c for c in out.new.values()}
    assert kids["mutation"].text == "Solve.\nRULE-3\nRULE-4"
    assert out.selection.notes["rejected"] == []
    assert len(out.asks) == 3


def test_optimistic_selection_prefers_uncertain_players_as_lambda_grows() -> None:
    sure, unsure = (27.0, 1.0), (24.0, 6.0)
    assert optimistic(sure, 0.0) > optimistic(unsure, 0.0)
    assert optimistic(unsure, 1.0) > optimistic(sure, 1.0)
