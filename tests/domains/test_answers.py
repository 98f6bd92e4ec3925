"""Structured answers: JSON-safe data from a domain through grading, graph state, the
run store, export and the report; anything else refused with a clear error."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from sipdo.answers import answer_text, check_answer
from sipdo.errors import PluginError
from sipdo.graph import Budget, create_sipdo_graph
from sipdo.plugins.domains.base import Task
from sipdo.plugins.domains.qa import QADomain
from sipdo.report import build_report
from sipdo.sandbox import Sandbox
from sipdo.store import RunStore
from sipdo.testing import ScriptedChatModel
from sipdo.testing.domains import SumDomain
from sipdo.verifiers.grading import LazySandbox, agrade_answer
from tests.domains.test_qa_domain import ANSWERS, MARKER, NEW, _question, learner
from tests.graph import world


def test_strings_and_json_safe_data_are_answers() -> None:
    assert check_answer("ANSWER: 3") == "ANSWER: 3"
    nested = {"final_answers": ["Max"], "steps": [1, 2.5, True, None, {"k": "v"}]}
    assert check_answer(nested) == nested
    assert check_answer([("a", 1)]) == [["a", 1]]  # a tuple reads back as JSON would
    assert answer_text({"b": 1, "a": "é"}) == '{"a":"é","b":1}'
    assert answer_text("as is") == "as is"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"final_answers": {"Max"}}, "answer['final_answers'] is a set"),
        ({"steps": [1, object()]}, "answer['steps'][1] is a object"),
        ({1: "a"}, "answer has the key 1 (int), not a string"),
        ([math.nan], "answer[0] is nan, not a JSON number"),
        (b"bytes", "returned an answer of type bytes"),
        (42, "returned an answer of type int"),
    ],
)
def test_what_is_not_json_safe_is_refused_naming_the_bad_value(answer: Any, message: str) -> None:
    with pytest.raises(PluginError, match=r"the toy domain returned an answer") as info:
        check_answer(answer, source="the toy domain")
    assert message in str(info.value)


def test_an_answer_holding_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(PluginError, match="nested too deeply"):
        check_answer(loop)


class SetAnswers(SumDomain):
    """A buggy domain: its answers are Python sets."""

    name = "set-sum"

    def parse_answer(self, task: Task, text: str) -> Any:
        return {text.strip()}


async def test_the_grading_service_refuses_a_domain_answer_that_is_not_json_safe(
    sandbox: Sandbox,
) -> None:
    domain = SetAnswers()
    task = domain.seed_tasks()[0]
    answer = domain.parse_answer(task, "5")
    with pytest.raises(PluginError, match="the set-sum domain returned an answer of type set"):
        await agrade_answer(domain, task, answer, sandbox=LazySandbox(sandbox))


async def test_qa_answers_are_structured_through_the_loop_store_export_and_report(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    store = RunStore(f"sqlite:///{tmp_path / 'runs.db'}")
    improved = f"Answer the question. {MARKER}, then read off the end."
    graph = create_sipdo_graph(
        learner(),
        generator_model=ScriptedChatModel([json.dumps(NEW)], name="generator"),
        checker_model=ScriptedChatModel(
            responder=lambda m: f"ANSWER: {ANSWERS[_question(m)]}", name="checker"
        ),
        optimizer_model=world.optimizer_model(improved),
        domain="qa",
        sandbox=sandbox,
        run_store=store,
        budget=Budget(iterations=1, tasks_per_iteration=1),
        gate="strict",  # a few ordering questions: below what the default sign test can see
    )
    cfg: Any = {"configurable": {"thread_id": "t-qa", "run_id": "run-qa"}}
    out = await graph.ainvoke({"prompt": QADomain.default_prompt}, cfg)
    assert out["best_prompt"] == improved

    attempts = [a for a in store.attempts("run-qa") if a.role == "learner"]
    assert attempts
    for a in attempts:
        assert isinstance(a.value, dict)
        assert a.value == a.structured
        assert json.loads(a.answer) == a.value  # the text column holds its JSON form
    wrong = next(a for a in attempts if not a.passed)
    assert wrong.value == {"final_answers": ["Tom"]}

    rewards = list(store.export("run-qa", "textual-reward"))
    assert {json.dumps(r["answer"], sort_keys=True) for r in rewards} >= {
        '{"final_answers": ["Tom"]}'
    }
    sft = list(store.export("run-qa", "sft"))
    assert sft
    assert all(isinstance(r["answer"]["final_answers"], list) for r in sft)
    pairs = [r for r in store.export("run-qa", "dpo") if r["kind"] == "answer"]
    assert all(isinstance(r["rejected"], dict) for r in pairs)
    # The optimizer read the failure as text, not as a Python repr.
    assert "'final_answers'" not in json.dumps(out["history"])

    page = build_report(store, "run-qa")
    assert "Kim is older than Lee" in page  # the generated question, accepted
    store.close()
