"""ProTeGi: gradients -> edits -> paraphrases, then bandit selection of the beam."""

from __future__ import annotations

import math

import pytest

from sipdo.errors import ConfigurationError
from sipdo.plugins.optimizers import bandits
from sipdo.plugins.optimizers.protegi import ProTeGiStrategy, parse_prompts
from sipdo.testing import ScriptedChatModel
from tests.optimizers.flows import candidate, run, world

TASKS = ["a1", "a2", "b1", "b2", "c1", "c2"]


def verdict(text: str, task_id: str) -> bool:
    """Task ``xN`` passes when the prompt holds ``RULE-X`` (``c`` tasks: never)."""
    return f"RULE-{task_id[0].upper()}" in text


def base_view(**kw: object) -> object:
    return world([candidate("p0", "Solve it.")], {"p0": "000000"}, TASKS, **kw)  # type: ignore[arg-type]


def script(*edits: str, paraphrases: tuple[str, ...] = ()) -> ScriptedChatModel:
    replies: list[object] = [{"critiques": ["misses rule A", "misses rule B", "ignored"]}]
    replies += [f"<prompt>\n{e}\n</prompt>" for e in edits]
    replies += [f"<prompt>{p}</prompt>" for p in paraphrases]
    return ScriptedChatModel(replies)


# -- bandits ------------------------------------------------------------------------------


def test_ucb_pulls_unpulled_arms_first_then_the_highest_index() -> None:
    assert bandits.ucb_pick({"a": [1.0], "b": [], "c": [0.0]}, 1) == ["b"]
    pulls = {"a": [0.5, 0.5, 0.5, 0.5], "b": [0.4], "c": [0.9, 0.9, 0.9, 0.9]}
    t = 9
    index = {a: r[0] + math.sqrt(2 * math.log(t) / len(r)) for a, r in pulls.items()}
    assert index["b"] > index["c"] > index["a"]  # few pulls: b's bonus outweighs c's mean
    assert bandits.ucb_pick(pulls, 2) == ["b", "c"]
    assert bandits.ucb_pick(pulls, 2, c=0.0) == ["c", "a"]  # no exploration: greedy


def test_successive_rejects_schedule_and_rejection() -> None:
    # K=4 arms, budget 40: n_k = ceil(36 / (log_bar(4) * (5 - k)))
    lb = 0.5 + 1 / 2 + 1 / 3 + 1 / 4
    expected = [math.ceil(36 / (lb * (5 - k))) for k in (1, 2, 3)]
    assert bandits.sr_schedule(4, 40) == expected
    assert bandits.sr_schedule(4, 40, keep=2) == expected[:2]
    assert bandits.sr_schedule(2, 40, keep=2) == []
    pulls = {"a": [0.5, 0.5], "b": [0.2], "c": [0.2, 0.2]}
    assert bandits.reject_worst(pulls, ["a", "b", "c"]) == ["b"]  # tie: fewer pulls goes
    assert bandits.ranking(pulls) == ["a", "c", "b"]


# -- the flow -------------------------------------------------------------------------------


def test_gradients_expand_into_edits_and_paraphrases_with_lineage() -> None:
    model = script(
        "Solve it.\nRULE-A",
        "Solve it.\nRULE-B",
        paraphrases=("Solve.\nRULE-A", "Solve it.\nRULE-B"),
    )
    strategy = ProTeGiStrategy(beam_width=2, gradients=2, rounds=2, eval_batch=6)
    out = run(strategy.step(base_view()), base_view(), model, verdict)  # type: ignore[arg-type]
    # 1 gradient call, 2 edits (one per critique; the third critique is over k), 2 paraphrases
    assert len(out.asks) == 5
    assert "misses rule A" in str(out.asks[1].messages[-1].content)
    assert "misses rule B" in str(out.asks[2].messages[-1].content)
    # a minibatch of 4 of the 6 failures is shown
    assert str(out.asks[0].messages[-1].content).count("wrong on") == 4
    ops = {c.operator for c in out.new.values()}
    assert ops == {"protegi_edit", "protegi_paraphrase"}
    edits = {c.text: c for c in out.new.values() if c.operator == "protegi_edit"}
    para = next(c for c in out.new.values() if c.operator == "protegi_paraphrase")
    # the paraphrase descends from the edit; the identical paraphrase of B was dropped
    assert para.parent_ids == [edits["Solve it.\nRULE-A"].id]
    assert len(out.new) == 3
    # every arm is pulled once on a shared minibatch first
    first = out.evaluations[0]
    assert len(first.candidates) == 4
    assert set(first.task_ids) == set(TASKS)
    sel = out.selection
    assert sel.candidate in out.new
    assert sel.error is None
    assert sel.state["beam"] == sel.notes["beam"]
    assert len(sel.state["beam"]) == 2
    assert "p0" not in sel.state["beam"]  # the incumbent (0 of 6) is out of the beam


def test_ucb_rounds_follow_the_ucb_index() -> None:
    model = script("Solve it.\nRULE-A", "Solve it.\nRULE-A RULE-B", paraphrases=("x RULE-A", "y"))
    strategy = ProTeGiStrategy(rounds=3, pulls_per_round=2, eval_batch=2, exploration=0.5)
    view = base_view(seed=3)
    out = run(strategy.step(view), view, model, verdict)  # type: ignore[arg-type]
    pulls: dict[str, list[float]] = {}
    for ev in out.evaluations:
        if not pulls:
            pulls = {(c if isinstance(c, str) else c.id): [] for c in ev.candidates}
        else:  # each later round pulls exactly the arms UCB names on the pulls so far
            assert list(ev.candidates) == bandits.ucb_pick(pulls, 2, 0.5)
        for c in ev.candidates:
            cid = c if isinstance(c, str) else c.id
            text = view.candidates[cid]["text"] if cid in view.candidates else out.text(cid)
            pulls[cid].append(sum(verdict(text, t) for t in ev.task_ids) / len(ev.task_ids))
    assert len(out.evaluations) == 4
    assert out.selection.notes["pulls"] == {a: [round(r, 4) for r in rs] for a, rs in pulls.items()}
    ranked = bandits.ranking(pulls)
    assert out.selection.state["beam"] == ranked[:2]


def test_successive_rejects_drops_one_arm_per_phase_down_to_the_beam() -> None:
    model = script(
        "Solve it.\nRULE-A", "Solve it.\nRULE-A RULE-B", paraphrases=("RULE-B", "RULE-C")
    )
    strategy = ProTeGiStrategy(selector="successive_rejects", eval_batch=2, rounds=3)
    view = base_view(seed=1)
    out = run(strategy.step(view), view, model, verdict)  # type: ignore[arg-type]
    arms = 1 + len(out.new)
    assert arms == 5
    # batches: gradients, edits, paraphrases, the shared first pull, then one per phase
    # that needs more pulls (K - b = 3 phases; a phase whose n_k repeats only rejects)
    schedule = bandits.sr_schedule(arms, arms * 4, keep=2)
    assert len(schedule) == 3
    assert out.batches == 4 + sum(n > m for m, n in zip([1, *schedule], schedule, strict=False))
    pulls = out.selection.notes["pulls"]
    survivors = out.selection.state["beam"]
    assert all(len(pulls[a]) == schedule[-1] for a in survivors)
    rejected = [a for a in pulls if a not in survivors]
    assert len(rejected) == 3
    assert min(len(pulls[a]) for a in rejected) < schedule[-1]  # rejected early: fewer pulls
    assert len(out.selection.state["beam"]) == 2
    both = next(c.id for c in out.new.values() if "RULE-A RULE-B" in c.text)
    assert both in out.selection.state["beam"]  # the arm solving 4 of 6 survives
    assert out.selection.candidate == bandits.ranking({a: pulls[a] for a in survivors})[0]


def test_an_incumbent_without_known_failures_is_probed_first() -> None:
    view = world([candidate("p0", "Solve it.")], {"p0": "11...."}, TASKS, decisions=[], seed=2)
    model = script("Solve it.\nRULE-A", "Solve it.\nRULE-B", paraphrases=("p", "q"))
    out = run(ProTeGiStrategy(rounds=0).step(view), view, model, verdict)
    probe = out.evaluations[0]
    assert probe.candidates == ["p0"]
    assert set(probe.task_ids) <= set(TASKS[2:])
    assert len(probe.task_ids) == 4


def test_unusable_gradients_end_the_step_with_a_reason() -> None:
    model = ScriptedChatModel(["no json here", "still none", "nope"])
    out = run(ProTeGiStrategy().step(base_view()), base_view(), model, verdict)  # type: ignore[arg-type]
    assert out.selection.candidate is None
    assert "no usable gradient" in (out.selection.error or "")


def test_an_edit_that_repeats_the_prompt_is_asked_for_once_more() -> None:
    from sipdo.plugins.optimizers.protegi import REPEAT_NOTE

    # critique A's edit gives the prompt back unchanged; critique B's is new
    model = script("Solve it.", "Solve it.\nRULE-B", "Solve it.\nRULE-A")
    strategy = ProTeGiStrategy(gradients=2, paraphrases=0, rounds=0, eval_batch=6)
    out = run(strategy.step(base_view()), base_view(), model, verdict)  # type: ignore[arg-type]
    assert len(out.asks) == 4  # gradients, two edits, one more for the repeat
    again = out.asks[3].messages
    assert "misses rule A" in str(again[1].content)  # the same critique, asked anew
    assert str(again[-1].content) == REPEAT_NOTE
    assert all(REPEAT_NOTE not in str(m.content) for a in out.asks[:3] for m in a.messages)
    texts = sorted(c.text for c in out.new.values())
    assert texts == ["Solve it.\nRULE-A", "Solve it.\nRULE-B"]
    made = next(c for c in out.new.values() if "RULE-A" in c.text)
    assert made.operator == "protegi_edit"
    assert made.rationale == "misses rule A"


def test_a_repeat_repeated_ends_the_step_with_the_reason() -> None:
    model = script("Solve it.", "Solve it.")
    strategy = ProTeGiStrategy(gradients=1, paraphrases=0, rounds=0)
    out = run(strategy.step(base_view()), base_view(), model, verdict)  # type: ignore[arg-type]
    assert len(out.asks) == 3  # gradients, the edit, one more request: no third
    assert out.selection.candidate is None
    assert out.selection.error == "the edits repeat the beam's prompts"


def test_an_unusable_edit_is_not_asked_for_again() -> None:
    replies: list[object] = [{"critiques": ["misses rule A"]}, "no prompt", "none", "nothing"]
    model = ScriptedChatModel(replies)
    strategy = ProTeGiStrategy(gradients=1, paraphrases=0, rounds=0)
    out = run(strategy.step(base_view()), base_view(), model, verdict)  # type: ignore[arg-type]
    assert len(out.asks) == 2  # the structured reply's own retries were its second chances
    assert out.selection.candidate is None


def test_parse_prompts_and_config_errors() -> None:
    assert parse_prompts("<prompt>a</prompt> and <prompt>\nb\n</prompt>").prompts == ["a", "b"]
    assert parse_prompts("<prompt>\nonly one, unclosed").prompts == ["only one, unclosed"]
    with pytest.raises(ValueError):
        parse_prompts("nothing")
    with pytest.raises(ConfigurationError):
        ProTeGiStrategy(selector="greedy")  # type: ignore[arg-type]


@pytest.mark.parametrize("judged", [False, True])
def test_the_best_arm_not_yet_judged_is_put_forward(judged: bool) -> None:
    strong = "Solve it.\nRULE-A RULE-B"
    cands = [candidate("p0", "Solve it."), candidate("b1", strong, ["p0"])]
    decisions = [{"candidate_id": "b1", "promoted": False}] if judged else []
    view = world(
        cands,
        {"p0": "000000", "b1": "111100"},
        TASKS,
        state={"beam": ["p0", "b1"]},
        decisions=decisions,
    )
    model = ScriptedChatModel(
        [
            {"critiques": ["misses rule A"]},
            {"critiques": ["misses rule C"]},
            "<prompt>Solve it.\nRULE-A</prompt>",
            "<prompt>RULE-C only</prompt>",
        ]
    )
    strategy = ProTeGiStrategy(gradients=1, paraphrases=0, rounds=0, eval_batch=6)
    out = run(strategy.step(view), view, model, verdict)
    assert "b1" in out.selection.state["beam"]  # 4 of 6: a survivor of the earlier beam
    assert out.selection.state["beam"][0] == "b1"
    # b1 leads; once the gate has judged it, the best new arm (2 of 6) goes instead
    best_new = next(a for a in out.selection.state["beam"] if a != "b1")
    assert out.new[best_new].text in ("Solve it.\nRULE-A", "RULE-C only")
    assert out.selection.candidate == (best_new if judged else "b1")
