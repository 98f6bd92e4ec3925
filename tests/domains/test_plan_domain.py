"""The plan domain: task soundness, grading in the real sandbox, the whole loop."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from sipdo.errors import ConfigurationError
from sipdo.graph import Budget, create_sipdo_graph
from sipdo.plugins.domains.plan import GeneratedPlanTask, PlanDomain, parse_plan_reply
from sipdo.sandbox import Sandbox
from sipdo.testing import ScriptedChatModel
from sipdo.verifiers.grading import LazySandbox, agrade_answer, agrade_task
from tests.domains import plans
from tests.graph import world

DOMAIN = PlanDomain(max_examples=25)
SEEDS = DOMAIN.seed_tasks()

NEW_TASK = {
    "question": "How tall is Mount Kilimanjaro in metres?",
    "truth": "5895",
    "distractors": ["5985", "5800"],
    "tools": ["search", "fetch", "check_source", "verify_claim"],
    "failure_modes": ["misleading", "timeout", "empty"],
    "max_results": 2,
    "max_steps": 10,
    "max_cost": 12,
    "answer_when": "first_good",
    "reference_plan": f"```python\n{plans.REFERENCE}```",
    "weakness": "misleading documents from reliable-looking sources",
}


def generated(**changes: Any) -> GeneratedPlanTask:
    return GeneratedPlanTask.model_validate({**NEW_TASK, **changes})


def task_of(**changes: Any) -> dict[str, Any]:
    return DOMAIN.task_from_generated(
        generated(**changes), difficulty=2, weakness="w", provenance={"iteration": 1}
    )


def test_seeds_are_valid_and_hide_the_truth_from_solvers() -> None:
    assert len(SEEDS) == 3
    for task in SEEDS:
        text = "\n".join(str(m.content) for m in DOMAIN.solve_messages(task, "P"))
        assert task["question"] in text
        assert task["truth"] not in text.replace(task["question"], "")
        assert "reference_plan" not in text
        assert "verify_claim(d.claim)" not in text
        checker = "\n".join(str(m.content) for m in DOMAIN.checker_messages(task))
        assert 'abstain("no verified claim' not in checker


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tools": ["search", "fetch", "browse"]}, "unknown tools"),
        ({"tools": ["fetch"]}, "needs at least the search and fetch tools"),
        ({"failure_modes": ["earthquake"]}, "unknown failure modes"),
        ({"reference_plan": "s = search(question"}, "reference_plan.*does not parse"),
        ({"reference_plan": "x = browse(question)\nanswer(x)"}, "browse\\(\\) is not a declared"),
        ({"question": ""}, "question"),
    ],
)
def test_bad_user_tasks_get_a_clear_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DOMAIN.validate_task({**SEEDS[0], **change})


def test_bad_generated_tasks_raise_value_error() -> None:
    with pytest.raises(ValueError, match="unknown tools"):
        task_of(tools=["search", "fetch", "teleport"])
    with pytest.raises(ValueError, match="reference plan is not a valid plan: line 1"):
        task_of(reference_plan="answer(")
    with pytest.raises(ValueError, match="truth is listed among the distractors"):
        task_of(distractors=["5895"])
    with pytest.raises(ValueError, match="answer_when"):
        task_of(answer_when="sometimes")


async def test_a_sound_task_is_accepted_with_every_check(sandbox: Sandbox) -> None:
    task = task_of()
    verdict = await agrade_task(
        DOMAIN, task, [plans.SEED_EXAMPLE, plans.REFERENCE], sandbox=LazySandbox(sandbox)
    )
    assert verdict["passed"], verdict["feedback"]
    names = {c["name"]: c for c in verdict["checks"]}
    assert names["satisfiable"]["passed"]
    assert names["discriminating"]["passed"]
    assert names["consensus"]["detail"] == "1 of 2 checker plans hold"


async def test_unsound_and_undiscriminating_tasks_are_rejected(sandbox: Sandbox) -> None:
    provider = LazySandbox(sandbox)
    wrong_reference = task_of(
        reference_plan=plans.SEED_EXAMPLE.replace("m = summarize(d)\n", "").replace(
            "m.claim", "d.claim"
        )
    )
    verdict = await agrade_task(DOMAIN, wrong_reference, [plans.REFERENCE], sandbox=provider)
    assert not verdict["passed"]
    assert verdict["feedback"].startswith("the reference plan fails (goal: answered")
    # No trouble and no properties beyond the goal... and an honest world: the naive
    # plan holds everywhere, so the task teaches nothing.
    easy = task_of(failure_modes=[])
    easy = DOMAIN.validate_task({**easy, "properties": ["goal", "no_failed_tool_answers"]})
    verdict = await agrade_task(DOMAIN, easy, [plans.REFERENCE], sandbox=provider)
    assert not verdict["passed"]
    assert "not discriminating" in verdict["feedback"]
    # The checkers' own plans all fail: no consensus that the task is solvable.
    verdict = await agrade_task(DOMAIN, task_of(), [plans.LIAR], sandbox=provider)
    assert not verdict["passed"]
    assert verdict["feedback"] == "no checker plan holds"


async def test_answers_are_graded_by_execution(sandbox: Sandbox) -> None:
    provider = LazySandbox(sandbox)
    task = SEEDS[1]  # tools that fail, time out, return malformed data
    good = await agrade_answer(DOMAIN, task, plans.REFERENCE, sandbox=provider)
    assert good["passed"]
    assert good["score"] == 1.0
    bad = await agrade_answer(DOMAIN, task, plans.SEED_EXAMPLE, sandbox=provider)
    assert not bad["passed"]
    assert bad["feedback"].startswith("no_failed_tool_answers: answered from a failed tool")
    assert json.loads(bad["counterexample"])["truth"] == "212"
    liar = await agrade_answer(DOMAIN, SEEDS[0], plans.LIAR, sandbox=provider)
    assert not liar["passed"]
    assert "not a claim taken from a fetched document" in liar["feedback"]
    broken = await agrade_answer(
        DOMAIN, task, "Sure! First I search, then I answer.", sandbox=provider
    )
    assert not broken["passed"]
    assert broken["feedback"].startswith("the plan is not valid: line 1: the plan does not parse")
    outside = await agrade_answer(DOMAIN, task, "x = browse(question)\nanswer(x)", sandbox=provider)
    assert "browse() is not a declared tool" in outside["feedback"]


# ---- the whole loop ---------------------------------------------------------------------

MARKER = "Verify every claim"


def learner() -> ScriptedChatModel:
    """Writes the seeds' search -> summarize -> answer plan until the prompt says to verify."""

    def respond(messages: list[BaseMessage]) -> str:
        good = MARKER in str(messages[0].content)
        return f"Plan:\n```python\n{plans.REFERENCE if good else plans.SEED_EXAMPLE}```"

    return ScriptedChatModel(responder=respond, name="learner")


async def test_the_loop_improves_the_seed_plan(sandbox: Sandbox) -> None:
    generator = ScriptedChatModel([json.dumps(NEW_TASK)], name="generator")
    checker = ScriptedChatModel(
        responder=lambda m: f"```python\n{plans.REFERENCE}```", name="checker"
    )
    improved = f"{PlanDomain.default_prompt} {MARKER} with verify_claim and check every source."
    graph = create_sipdo_graph(
        learner(),
        generator_model=generator,
        checker_model=checker,
        optimizer_model=world.optimizer_model(improved),
        domain=DOMAIN,
        sandbox=sandbox,
        budget=Budget(iterations=1, tasks_per_iteration=1),
        gate="strict",  # four fixes: below what the default sign test can see (p = 1/16)
    )
    out = await graph.ainvoke({"prompt": PlanDomain.default_prompt})
    assert out["best_prompt"] == improved
    assert [t["question"] for t in out["accepted_tasks"]] == [NEW_TASK["question"]]
    learner_runs = [h for h in out["history"] if h["kind"] == "learner"]
    assert len(learner_runs[0]["failed"]) == 3  # every seed: the plan is deficient
    attempt = next(h for h in out["history"] if h["kind"] == "prompt_attempt")
    assert attempt["accepted"]
    assert len(attempt["fixed"]) == 4
    # The generator was aimed at a real failure, with its counterexample.
    assert "Counterexample scenario" in generator.calls[0].text
    # The checker never saw the truth or the reference plan.
    assert all("5895" not in c.text and "reference_plan" not in c.text for c in checker.calls)


async def test_a_plan_that_does_not_parse_is_sent_back_with_what_to_write_instead() -> None:
    task = DOMAIN.seed_tasks()[0]
    broken = (
        "```python\ndef search(query):\n    return search(query)\n\n"
        "s = search(question)\nanswer(s.first)\n```"
    )
    asked: list[list[BaseMessage]] = []
    replies = iter([broken, f"```python\n{plans.REFERENCE}```"])

    async def ask(messages: Sequence[BaseMessage]) -> str:
        asked.append(list(messages))
        return next(replies)

    plan = await DOMAIN.asolve(task, PlanDomain.default_prompt, ask)
    assert plan == plans.REFERENCE
    assert len(asked) == 2
    retry = str(asked[1][-1].content)
    assert retry.startswith(
        "That plan cannot run: line 1: FunctionDef is not allowed in a plan: write the steps "
        "at top level, calling the declared tools directly."
    )
    assert asked[1][-2].content == broken  # the model sees its own reply, then the error

    # Without retries (or when the retry is still broken) the last plan is the answer,
    # and the verifier fails it with the same error.
    once = PlanDomain(plan_retries=0)
    replies = iter([broken])
    assert await once.asolve(task, PlanDomain.default_prompt, ask) == parse_plan_reply(broken)
    assert len(asked) == 3


async def test_the_checker_gets_the_same_parse_retries_and_stays_blind() -> None:
    task = DOMAIN.seed_tasks()[0]
    broken = "```python\ndef plan():\n    return 1\n```"
    asked: list[list[BaseMessage]] = []
    replies = iter([broken, f"```python\n{plans.REFERENCE}```"])

    async def ask(messages: Sequence[BaseMessage]) -> str:
        asked.append(list(messages))
        return next(replies)

    plan = await DOMAIN.acheck(task, ask)
    assert plan == plans.REFERENCE
    assert len(asked) == 2  # the parse error was sent back once
    assert str(asked[1][-1].content).startswith("That plan cannot run: line 2: Return")
    assert [str(m.content) for m in asked[0]] == [
        str(m.content) for m in DOMAIN.checker_messages(task)
    ]
    seen = " ".join(str(m.content) for m in asked[1])
    assert "reference_plan" not in seen
    assert str(task["truth"]) not in seen
