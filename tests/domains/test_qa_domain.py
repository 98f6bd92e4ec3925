"""The qa domain: derivation in the sandbox, k-of-n consensus, exact grading, the loop."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from sipdo.errors import ConfigurationError
from sipdo.graph import Budget, create_sipdo_graph
from sipdo.plugins.domains.qa import GeneratedQATask, QADomain, canonical, same_answer
from sipdo.sandbox import Sandbox
from sipdo.testing import ScriptedChatModel
from sipdo.verifiers.grading import LazySandbox, agrade_answer, agrade_task
from tests.graph import world

DOMAIN = QADomain()
SEEDS = DOMAIN.seed_tasks()
HELDOUT = DOMAIN.heldout_tasks()

NEW = {
    "question": "Kim is older than Lee. Max is younger than Lee. Ned is older than Kim. "
    "Who is the youngest?",
    "answer": "Max",
    "family": "ordering",
    "spec": {"relations": [["Kim", "Lee"], ["Lee", "Max"], ["Ned", "Kim"]], "ask": "min"},
    "weakness": "relations stated in both directions",
}


def generated(**changes: Any) -> dict[str, Any]:
    gen = GeneratedQATask.model_validate({**NEW, **changes})
    return DOMAIN.task_from_generated(gen, difficulty=2, weakness="w", provenance={})


def test_seed_and_heldout_questions_are_shipped_and_disjoint() -> None:
    assert len(SEEDS) == 6
    assert len(HELDOUT) == 6
    assert {t["family"] for t in SEEDS} == {"ordering", "arithmetic", "date"}
    assert {t["family"] for t in HELDOUT} == {"ordering", "arithmetic", "date"}
    assert not {t["question"] for t in SEEDS} & {t["question"] for t in HELDOUT}
    assert SEEDS[0]["question"].startswith("Tom is older than Mike. Mike is older than John.")


async def test_every_shipped_question_re_derives_in_the_sandbox(sandbox: Sandbox) -> None:
    provider = LazySandbox(sandbox)
    for task in [*SEEDS, *HELDOUT]:
        verdict = await agrade_task(
            DOMAIN, task, [f"ANSWER: {task['answer']}"] * 3, sandbox=provider
        )
        assert verdict["passed"], (task["question"], verdict["feedback"])


def test_solvers_never_see_the_answer_or_spec() -> None:
    task = SEEDS[2]
    for messages in (DOMAIN.solve_messages(task, "P"), DOMAIN.checker_messages(task)):
        text = "\n".join(str(m.content) for m in messages)
        assert task["question"] in text
        assert "27 / 3 * 2" not in text
        assert "18" not in text


@pytest.mark.parametrize(
    ("given", "expected", "same"),
    [
        ("John", "john", True),
        (" John. ", "John", True),
        ("18 dollars", "18", True),
        ("18.0", "18", True),
        ("$1,000.50", "1000.5", True),
        ("\\boxed{18}", "18", True),
        ("3/4", "0.75", True),
        ("March 1, 2024", "2024-03-01", True),
        ("1st March 2024", "2024-03-01", True),
        ("18 or 19", "18", False),
        ("Tom or John", "John", False),
        ("not John", "John", False),
        ("John, Mike, Tom", "John", False),
        ("the youngest is John", "John", False),
    ],
)
def test_answers_are_compared_exactly_after_normalization(
    given: str, expected: str, same: bool
) -> None:
    assert same_answer(given, expected) is same, (canonical(given), canonical(expected))


@pytest.mark.parametrize(
    ("reply", "passed", "feedback"),
    [
        ("Tom > Mike > John, so John.\nANSWER: John", True, "correct"),
        ("ANSWER: John\nANSWER: Tom", False, "several different final answers"),
        ("It could be Tom or John.\nANSWER: Tom or John", False, "wrong answer"),
        ("Answer: john", True, "correct"),
        ("ANSWER: Mike\nFinal answer: John", False, "several different final answers"),
        ("", False, "no final answer"),
    ],
)
async def test_answers_that_game_the_checker_fail(
    sandbox: Sandbox, reply: str, passed: bool, feedback: str
) -> None:
    answer = DOMAIN.parse_answer(SEEDS[0], reply)
    verdict = await agrade_answer(DOMAIN, SEEDS[0], answer, sandbox=LazySandbox(sandbox))
    assert verdict["passed"] is passed
    assert verdict["feedback"].startswith(feedback)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"answer": "Lee"}, "the generator's answer 'Lee' differs from the answer derived"),
        (
            {"spec": {"relations": [["Kim", "Lee"], ["Ned", "Max"]], "ask": "min"}},
            "underdetermined: the relations do not fix the min",
        ),
        (
            {"spec": {"relations": [["Kim", "Lee"], ["Lee", "Kim"]], "ask": "min"}},
            "contradictory",
        ),
        (
            {"spec": {"relations": [["Kim", "Zed"]], "ask": "min"}},
            "the question does not mention Zed",
        ),
        (
            {
                "question": "A box holds 6 eggs. How many eggs are in 4 boxes?",
                "answer": "24",
                "family": "arithmetic",
                "spec": {"expression": "6 * 4 + 0 * 13"},
            },
            "the expression uses 13, not in the question",
        ),
        (
            {
                "question": "What is 9 to the power 9 to the power 9?",
                "answer": "1",
                "family": "arithmetic",
                "spec": {"expression": "9 ** 9 ** 9"},
            },
            "arithmetic: the power is too large",
        ),
        (
            {
                "question": "What is 2 plus 2?",
                "answer": "4",
                "family": "arithmetic",
                "spec": {"expression": "__import__('os')"},
            },
            "arithmetic: 'os' is not a number",
        ),
    ],
)
async def test_unsound_questions_are_rejected_with_the_reason(
    sandbox: Sandbox, changes: dict[str, Any], reason: str
) -> None:
    task = generated(**changes)
    answers = [f"ANSWER: {task['answer']}"] * 3
    verdict = await agrade_task(DOMAIN, task, answers, sandbox=LazySandbox(sandbox))
    assert not verdict["passed"]
    assert reason in verdict["feedback"]


async def test_consensus_decides_free_questions(sandbox: Sandbox) -> None:
    provider = LazySandbox(sandbox)
    task = generated(
        question="Which is the largest planet of the solar system?",
        answer="Jupiter",
        family="free",
        spec={},
    )
    two_of_three = ["ANSWER: Jupiter", "ANSWER: jupiter.", "ANSWER: Saturn"]
    verdict = await agrade_task(DOMAIN, task, two_of_three, sandbox=provider)
    assert verdict["passed"]
    assert verdict["checks"][-1]["detail"] == "2 of 3 checkers answer 'Jupiter'"
    hedged = ["ANSWER: Jupiter\nANSWER: Saturn", "ANSWER: Saturn", "ANSWER: Jupiter"]
    verdict = await agrade_task(DOMAIN, task, hedged, sandbox=provider)
    assert not verdict["passed"]
    assert verdict["feedback"].startswith("ambiguous or wrong: only 1 of 3 independent checkers")


def test_bad_questions_get_a_clear_error() -> None:
    with pytest.raises(ValueError, match="the question has no answer"):
        generated(answer="  ")
    with pytest.raises(ValueError, match="unknown family 'riddle'"):
        generated(family="riddle")
    with pytest.raises(ConfigurationError, match=r"invalid qa task \(answer\)"):
        DOMAIN.validate_task({"question": "Who?"})
    with pytest.raises(ConfigurationError, match=r"invalid qa task \(family\)"):
        DOMAIN.validate_task({"question": "Who?", "answer": "x", "family": "riddle"})


# ---- the whole loop ---------------------------------------------------------------------

MARKER = "Write every relation as a chain"
ANSWERS = {t["question"]: t["answer"] for t in [*SEEDS, generated()]}


def _question(messages: list[BaseMessage]) -> str:
    text = str(messages[-1].content)
    return text.removeprefix("Question: ").split("\n\n")[0]


def learner() -> ScriptedChatModel:
    """Right on everything under the marker; else wrong on ordering questions."""

    def respond(messages: list[BaseMessage]) -> str:
        question = _question(messages)
        right = MARKER in str(messages[0].content) or "older" not in question
        return f"Let me think.\nANSWER: {ANSWERS[question] if right else 'Tom'}"

    return ScriptedChatModel(responder=respond, name="learner")


async def test_the_loop_runs_on_the_qa_domain_by_name(sandbox: Sandbox) -> None:
    generator = ScriptedChatModel([json.dumps(NEW)], name="generator")
    checker = ScriptedChatModel(
        responder=lambda m: f"ANSWER: {ANSWERS[_question(m)]}", name="checker"
    )
    improved = f"Answer the question. {MARKER}, then read off the end."
    graph = create_sipdo_graph(
        learner(),
        generator_model=generator,
        checker_model=checker,
        optimizer_model=world.optimizer_model(improved),
        domain="qa",
        sandbox=sandbox,
        budget=Budget(iterations=1, tasks_per_iteration=1),
        gate="strict",  # a few ordering questions: below what the default sign test can see
    )
    out = await graph.ainvoke({"prompt": QADomain.default_prompt})
    assert out["best_prompt"] == improved
    assert [t["answer"] for t in out["accepted_tasks"]] == ["Max"]
    assert len(checker.calls) == 3  # k-of-n: three independent checker answers
    first = next(h for h in out["history"] if h["kind"] == "learner")
    assert len(first["failed"]) == 1  # the Tom/Mike/John seed
    attempt = next(h for h in out["history"] if h["kind"] == "prompt_attempt")
    assert attempt["accepted"]
    assert len(attempt["fixed"]) == 2
