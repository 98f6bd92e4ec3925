"""Candidates and the score table: ids, rendering, flags, cells, the Pareto front."""

from __future__ import annotations

from sipdo.graph.lifecycle import version_id
from sipdo.plugins.optimizers.candidates import (
    NewCandidate,
    as_state,
    candidate_id,
    render,
    specificity_flags,
)
from sipdo.plugins.optimizers.scores import (
    best_per_task,
    cell_of,
    combine,
    pareto_front,
    value,
)

TASK = {
    "id": "t-merge",
    "entry_point": "merge_intervals",
    "tests": "from solution import merge_intervals\n\ndef test_a():\n"
    "    assert merge_intervals([(1, 300)]) == [(1, 300)]\n    assert f('abcd') == 'dcba'\n",
}


def test_ids_are_content_derived_and_match_the_old_version_ids() -> None:
    one = candidate_id({"instructions": "Be careful."}, ["pv-1"])
    assert one == version_id("Be careful.", "pv-1")
    assert candidate_id({"instructions": "Be careful."}, ["pv-1", "pv-2"]) != one
    assert render({"instructions": " A ", "demos": "", "style": "B"}) == "A\n\nB"


def test_new_candidate_record_has_diffs_and_flags() -> None:
    cand = NewCandidate({"instructions": "Sort merge_intervals first."}, ["p"], "refine")
    record = as_state(cand, {"p": {"text": "Be careful."}}, tasks=[TASK], iteration=2, step=1)
    assert record["id"] == cand.id
    assert record["diffs"]["p"].startswith("--- p")
    assert "+Sort merge_intervals first." in record["diffs"]["p"]
    assert record["flags"] == ["names the task function 'merge_intervals'"]
    assert (record["iteration"], record["step"], record["operator"]) == (2, 1, "refine")


def test_specificity_flags_name_functions_and_test_values_only() -> None:
    flags = specificity_flags("Return 'dcba' for 'abcd' and handle 300.", [TASK])
    assert "repeats the test value 'abcd' of merge_intervals" in flags
    assert "repeats the test value '300' of merge_intervals" in flags
    general = "Handle empty inputs, negative numbers and single elements; do not mutate inputs."
    assert specificity_flags(general, [TASK]) == []
    assert specificity_flags("", [TASK]) == []


def test_specificity_flags_see_paraphrases_and_worked_examples() -> None:
    # What the local 1.5B wrote in a real run: the seed task, reworded.
    reworded = "The intervals are sorted before merging them. Handle empty input."
    assert specificity_flags(reworded, [TASK]) == [
        "paraphrases the task function 'merge_intervals'"
    ]
    # Both words, but in different sentences: a general rule may say that.
    apart = "Merge duplicate keys. Keep the intervals open at the ends."
    assert specificity_flags(apart, [TASK]) == []
    example = "Example:\n```python\n>>> sum_pairs([1, 2, 3])\n[1, 3, 5]\n```"
    assert specificity_flags(example, []) == [
        "carries a worked example of the function 'sum_pairs'"
    ]
    assert specificity_flags("def f(x): ...", []) == [
        "carries a worked example of the function 'f'"
    ]
    # A one-word name is an English word too: only its use as code is specific.
    clamp = {"entry_point": "clamp", "tests": ""}
    assert specificity_flags("Clamp values into the closed range; clamp ends.", [clamp]) == []
    assert specificity_flags("Call `clamp` on the ends.", [clamp]) == [
        "names the task function 'clamp'"
    ]
    assert specificity_flags("Use clamp(x, lo, hi).", [clamp]) == [
        "names the task function 'clamp'"
    ]


def test_cells_combine_samples() -> None:
    ok = cell_of({"passed": True, "score": 1.0}, "code")
    bad = cell_of({"passed": False, "score": 0.5, "feedback": "wrong on []"}, "code2")
    assert "answer" not in ok
    assert bad["feedback"] == "wrong on []"
    both = combine(ok, bad)
    assert both["n"] == 2
    assert both["passes"] == 1
    assert not both["passed"]
    assert value(both) == 0.5
    assert both["score"] == 0.75
    assert both["answer"] == "code2"


def test_pareto_front_keeps_per_task_winners_that_are_not_dominated() -> None:
    def c(passed: bool) -> dict[str, object]:
        return {"passed": passed, "passes": int(passed), "n": 1, "score": float(passed)}

    table = {
        "a": {"t1": c(True), "t2": c(False), "t3": c(False)},
        "b": {"t1": c(False), "t2": c(True), "t3": c(False)},
        "c": {"t1": c(True), "t2": c(True), "t3": c(False)},  # dominates a and b
        "d": {"t1": c(False), "t2": c(False), "t3": c(True)},
    }
    tasks = ["t1", "t2", "t3"]
    assert best_per_task(table, list(table), tasks) == {
        "t1": ["a", "c"],
        "t2": ["b", "c"],
        "t3": ["d"],
    }
    assert pareto_front(table, list(table), tasks) == ["c", "d"]
