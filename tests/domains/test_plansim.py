"""The plan executor itself, in-process: properties over Hypothesis-generated worlds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipdo.plugins.domains import plansim
from sipdo.plugins.domains.plan import PlanDomain
from tests.domains import plans

SEEDS = PlanDomain().seed_tasks()
EVERYTHING = {
    **SEEDS[0],
    "scenario": {**SEEDS[0]["scenario"], "failure_modes": list(plansim.FAILURE_MODES)},
}
TASKS = [*SEEDS, EVERYTHING]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def run(plan: str, task: dict[str, Any], scenario: dict[str, Any]) -> tuple[list[str], Any, Any]:
    return plansim.run_plan(plansim.parse_plan(plan, task["tools"]), task, scenario)


@FAST
@given(st.data())
def test_the_reference_plan_is_never_failed(data: st.DataObject) -> None:
    task = data.draw(st.sampled_from(TASKS))
    scenario = data.draw(plansim.scenarios(task))
    violations, _, _ = run(plans.REFERENCE, task, scenario)
    assert violations == []


@FAST
@given(st.data())
def test_an_answer_from_a_failed_tool_is_always_caught(data: st.DataObject) -> None:
    task = EVERYTHING
    scenario = data.draw(plansim.scenarios(task))
    violations, trace_run, end = run(plans.SEED_EXAMPLE, task, scenario)
    assert end.kind == "answer"
    if not end.value.ok:
        assert any(v.startswith("no_failed_tool_answers") for v in violations)
    failed_calls = [t for t in trace_run.trace if not t["ok"]]
    if failed_calls:  # search, fetch or summarize failed on the way to the answer
        assert violations


@FAST
@given(st.data())
def test_a_wrong_answer_is_always_caught(data: st.DataObject) -> None:
    task = EVERYTHING
    scenario = data.draw(plansim.scenarios(task))
    violations, _, end = run(plans.IGNORES_VERIFIER, task, scenario)
    if end.kind == "answer" and end.value.ok and end.value.data != scenario["truth"]:
        assert any(v.startswith("goal") for v in violations)


def test_the_seed_example_plan_is_deficient_with_a_concrete_counterexample() -> None:
    result = plansim.check_plan(plans.SEED_EXAMPLE, SEEDS[0], max_examples=30)
    assert not result["passed"]
    assert result["violations"][0] == "goal: answered '1887', the truth is '1889'"
    assert (
        "verifies_claims: answered without verify_claim supporting the claim"
        in result["violations"]
    )
    counter = result["counterexample"]
    assert counter["results"][0]["claim"] == "1887"  # a misleading first result
    assert (
        "trace: search: 2 result(s) -> fetch: #0 from blog claims '1887'" in result["explanation"]
    )


def test_a_plan_that_lies_about_its_result_fails() -> None:
    result = plansim.check_plan(plans.LIAR, SEEDS[0], max_examples=30)
    assert not result["passed"]
    assert "goal: the answer is not a claim taken from a fetched document" in result["violations"]


def test_a_plan_that_always_abstains_fails() -> None:
    result = plansim.check_plan('abstain("never sure")', SEEDS[0], max_examples=30)
    assert not result["passed"]
    assert result["violations"] == [
        "goal: abstained although a reliable, current source gave the true answer"
    ]


def test_a_plan_without_an_ending_fails() -> None:
    result = plansim.check_plan("s = search(question)", SEEDS[0], max_examples=30)
    assert result["violations"] == [
        "handles_failures: the plan ended without answer() or abstain()"
    ]


def test_the_budget_is_enforced() -> None:
    task = {**SEEDS[0], "scenario": {**SEEDS[0]["scenario"], "max_cost": 4}}
    result = plansim.check_plan(plans.REFERENCE, task, max_examples=30)
    assert not result["passed"]
    assert result["violations"][0].startswith("budget: over the budget")


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ("", "the plan is empty"),
        ("s = search(question", "line 1: the plan does not parse"),
        ("import os", "line 1: Import is not allowed in a plan"),
        ("s = browse(question)", "line 1: browse() is not a declared tool"),
        ("s = search(question)\nwhile True:\n    pass", "line 2: While is not allowed"),
        ("s = search(question)\nx = s.__class__", "line 2: no field '__class__'"),
        ("s = search(query=question)", "positional arguments"),
        ("answer(d.claim)", "line 1: 'd' is never assigned"),
        ("s = search(question)\nx = s.results[s]", "index lists with a number"),
        ("f = lambda: 1", "Lambda is not allowed"),
        ("s = search(question)\nif s < 1:\n    abstain()", "operator Lt is not allowed"),
    ],
)
def test_bad_plans_get_a_clear_error(plan: str, message: str) -> None:
    with pytest.raises(plansim.PlanError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plansim.parse_plan(plan, list(plansim.TOOLS))


def test_a_tool_outside_the_declared_set_is_refused() -> None:
    task = {**SEEDS[0], "tools": ["search", "fetch"]}
    result = plansim.check_plan(plans.REFERENCE, task, max_examples=5)
    assert not result["parsed"]
    assert (
        "check_source() is not a declared tool (tools: fetch, search, answer, abstain)"
        in (result["violations"][0])
    )


def test_a_plan_written_as_one_function_is_read_as_its_body() -> None:
    body = "\n".join("    " + line for line in plans.REFERENCE.splitlines())
    for text in (f"def plan():\n{body}\n", f"def plan():\n{body}\nplan()\n"):
        assert plansim.check_plan(text, SEEDS[0], max_examples=10)["passed"]
    with pytest.raises(plansim.PlanError, match="FunctionDef is not allowed"):
        plansim.parse_plan(f"def plan(x):\n{body}\n", list(plansim.TOOLS))
    with pytest.raises(plansim.PlanError, match="Return is not allowed"):
        plansim.parse_plan("def plan():\n    return search(question)\n", list(plansim.TOOLS))
