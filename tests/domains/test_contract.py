"""One contract suite over every registered domain and the shipped ``SumDomain``."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel

from sipdo.errors import ConfigurationError
from sipdo.graph import Budget, create_sipdo_graph
from sipdo.graph.builder import resolve_plugin
from sipdo.plugins.domains.base import Ask, BaseDomain, Domain
from sipdo.plugins.registry import available
from sipdo.sandbox import Sandbox
from sipdo.structured import ReplyFormat
from sipdo.testing import ScriptedChatModel, SumDomain
from sipdo.verifiers.grading import LazySandbox, agrade_answer
from tests.graph import world

NAMES = available("sipdo.domains")
assert {"code", "plan", "qa"} <= set(NAMES)


def make(name: str) -> Domain:
    if name == "sum":
        return SumDomain()
    return resolve_plugin("sipdo.domains", name, Domain)  # type: ignore[type-abstract]


ALL = [*NAMES, "sum"]


def text(messages: list[Any]) -> str:
    return "\n".join(str(m.content) for m in messages)


@pytest.mark.parametrize("name", ALL)
def test_the_domain_implements_the_protocol(name: str) -> None:
    domain = make(name)
    assert isinstance(domain, Domain)
    assert isinstance(domain, BaseDomain)  # the built-ins implement it explicitly
    assert domain.name == name
    assert domain.default_prompt.strip()
    assert domain.n_checkers >= 1
    assert domain.max_difficulty >= 2
    assert isinstance(domain.generated_format(), ReplyFormat)
    assert issubclass(domain.generated_schema, BaseModel)


@pytest.mark.parametrize("name", ALL)
def test_seed_tasks_are_valid_json_safe_and_stable(name: str) -> None:
    domain = make(name)
    seeds = domain.seed_tasks()
    assert seeds
    assert len({t["id"] for t in seeds}) == len(seeds)
    assert len({domain.dedup_key(t) for t in seeds}) == len(seeds)
    for task in seeds:
        assert json.loads(json.dumps(task)) == task
        assert domain.validate_task(task) == task  # normal form is a fixed point
        assert domain.seed_tasks()[seeds.index(task)]["id"] == task["id"]
        assert isinstance(task["difficulty"], int)
        assert 1 <= task["difficulty"] <= domain.max_difficulty
        assert isinstance(task["weakness"], str)


@pytest.mark.parametrize("name", ALL)
def test_solvers_never_see_the_hidden_fields(name: str) -> None:
    domain = make(name)
    assert isinstance(domain, BaseDomain)
    for task in domain.seed_tasks():
        shown = json.dumps(domain.blind(task))
        for messages in (domain.solve_messages(task, "PROMPT"), domain.checker_messages(task)):
            seen = text(messages)
            for key in domain.hidden_fields:
                value = str(task.get(key, ""))
                # A hidden value may occur in the visible task (qa: a name in the
                # question); short ones (qa's family "date") in the fixed instructions.
                if len(value) >= 5 and value not in shown:
                    assert value not in seen, (name, key)


@pytest.mark.parametrize("name", ALL)
def test_bad_user_tasks_raise_configuration_error(name: str) -> None:
    domain = make(name)
    with pytest.raises(ConfigurationError):
        domain.validate_task({})
    with pytest.raises(ConfigurationError):
        domain.validate_task("not a task")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ALL)
def test_bad_generated_output_raises_value_error(name: str) -> None:
    class Other(BaseModel):
        nonsense: str = "x"

    with pytest.raises(ValueError):
        make(name).task_from_generated(Other(), difficulty=2, weakness="w", provenance={})


@pytest.mark.parametrize("name", ALL)
async def test_a_garbage_answer_is_a_failing_verdict_not_an_error(
    name: str, sandbox: Sandbox
) -> None:
    domain = make(name)
    task = domain.seed_tasks()[0]
    answer = domain.parse_answer(task, "I refuse. ```\n\x00 ]]} \n```")
    verdict = await agrade_answer(domain, task, answer, sandbox=LazySandbox(sandbox))
    assert verdict["passed"] is False
    assert verdict["score"] == 0.0
    assert verdict["feedback"]
    assert not verdict.get("task_error")
    failure = {"task": task, "answer": answer, "verdict": verdict}
    assert task["id"] in domain.describe_failure(failure)


async def test_the_shipped_toy_domain_runs_the_loop(sandbox: Sandbox) -> None:
    learner = ScriptedChatModel(
        responder=lambda m: "41" if "42" not in str(m[0].content) else "42", name="learner"
    )
    graph = create_sipdo_graph(
        learner,
        generator_model=ScriptedChatModel([{"a": 40, "b": 2, "answer": 42}]),
        checker_model=ScriptedChatModel(["42", "42", "41"]),
        optimizer_model=world.optimizer_model("Add carefully: 40 + 2 is 42."),
        domain=SumDomain(seeds=[(1, 1)]),
        sandbox=sandbox,
        budget=Budget(iterations=1, tasks_per_iteration=1),
        gate="strict",  # two tasks: below what the default sign test can see
    )
    out = await graph.ainvoke({"prompt": "Add."})
    assert [t["answer"] for t in out["accepted_tasks"]] == [42]
    assert out["best_prompt"] == "Add carefully: 40 + 2 is 42."


class TwoTurnSum(SumDomain):
    """Solves in two turns: a draft, then a check of the draft."""

    async def asolve(self, task: dict[str, Any], system_prompt: str, ask: Ask) -> str:
        first = self.solve_messages(task, system_prompt)
        draft = await ask(first)
        final = await ask([*first, AIMessage(content=draft), HumanMessage(content="Check it.")])
        return self.parse_answer(task, final)


async def test_a_domain_may_solve_in_several_turns(sandbox: Sandbox) -> None:
    def respond(messages: list[Any]) -> str:
        if str(messages[-1].content) == "Check it.":  # the second turn corrects the draft
            a, b = map(int, re.findall(r"-?\d+", str(messages[1].content)))
            return str(a + b)
        return "0"

    learner = ScriptedChatModel(responder=respond, name="learner")
    graph = create_sipdo_graph(
        learner,
        generator_model=ScriptedChatModel([{"a": 40, "b": 2, "answer": 42}]),
        checker_model=ScriptedChatModel(["42", "42", "42"]),
        optimizer_model=ScriptedChatModel([]),
        domain=TwoTurnSum(seeds=[(1, 1)]),
        sandbox=sandbox,
        budget=Budget(iterations=1, tasks_per_iteration=1),
    )
    out = await graph.ainvoke({"prompt": "Add."})
    assert [h["failed"] for h in out["history"] if h["kind"] == "learner"] == [[], []]
    assert out["budget_used"]["model_calls"]["learner"] == 4  # two turns per task, counted
    assert len(learner.calls) == 4
