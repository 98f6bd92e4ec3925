"""The compiled sipdo graph inside a parent LangGraph graph: checkpointer, custom
stream events from the subgraph, human approval with interrupt() / Command(resume=...),
and a plain synchronous compile-and-invoke."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from sipdo.graph import Budget, create_sipdo_graph
from sipdo.sandbox import Sandbox
from tests.graph import world

INITIAL = "You write Python functions."


class Parent(TypedDict):
    prompt: str
    seed_tasks: NotRequired[list[dict[str, Any]]]
    best_prompt: NotRequired[str]
    stop_reason: NotRequired[str]
    summary: NotRequired[str]


def parent_graph(
    sub: CompiledStateGraph[Any, Any, Any, Any],
) -> CompiledStateGraph[Any, Any, Any, Any]:
    def summarize(state: Parent) -> dict[str, Any]:
        return {"summary": f"{state['stop_reason']}: {state['best_prompt']}"}

    g = StateGraph(Parent)
    g.add_node("optimize_prompt", sub)
    g.add_node("summarize", summarize)
    g.add_edge(START, "optimize_prompt")
    g.add_edge("optimize_prompt", "summarize")
    g.add_edge("summarize", END)
    return g.compile(checkpointer=InMemorySaver())


def sipdo_sub(
    sandbox: Sandbox, *, approve: bool, prompts: tuple[str, ...]
) -> CompiledStateGraph[Any, Any, Any, Any]:
    return create_sipdo_graph(
        world.learner_model(always=["rotate_left"]),
        generator_model=world.generator_model(world.CLAMP),
        checker_model=world.checker_model(),
        optimizer_model=world.optimizer_model(*prompts),
        strategy="sipdo",  # world.optimizer_model scripts its requests
        domain=world.domain(),
        sandbox=sandbox,
        budget=Budget(iterations=1, tasks_per_iteration=1, max_refinements=2),
        approve_prompts=approve,
    )


async def drive(
    graph: CompiledStateGraph[Any, Any, Any, Any], value: Any, cfg: Any
) -> tuple[list[dict[str, Any]], list[Any]]:
    events, interrupts = [], []
    async for _ns, mode, chunk in graph.astream(
        value, cfg, stream_mode=["custom", "updates"], subgraphs=True
    ):
        if mode == "custom":
            events.append(chunk)
        elif "__interrupt__" in chunk:
            # With subgraphs=True the same interrupt surfaces in both namespaces.
            interrupts.extend(
                i for i in chunk["__interrupt__"] if i.id not in {j.id for j in interrupts}
            )
    return events, interrupts


# Four failures here and the generated clamp: enough fixes for the default gate to promote.
SEEDS = world.level_one_seeds()


async def test_subgraph_streams_events_and_finishes(sandbox: Sandbox) -> None:
    parent = parent_graph(sipdo_sub(sandbox, approve=False, prompts=("Be exact. FIX",)))
    cfg: Any = {"configurable": {"thread_id": "embed-1"}}
    events, interrupts = await drive(parent, {"prompt": INITIAL, "seed_tasks": SEEDS}, cfg)
    assert interrupts == []
    kinds = [e["event"] for e in events]
    assert kinds[0] == "budget"
    assert kinds[-1] == "run_end"
    assert {"iteration_start", "task_verdict", "learner_result", "prompt_candidate"} <= set(kinds)
    state = (await parent.aget_state(cfg)).values
    assert state["best_prompt"] == "Be exact. FIX"
    assert state["summary"] == "iterations: Be exact. FIX"


@pytest.mark.parametrize(
    ("answers", "best"),
    [
        ((True,), "first FIX"),
        ((False, {"approved": True}), "second FIX"),
        ((False, "no"), INITIAL),
    ],
)
async def test_approval_pauses_and_resumes(
    sandbox: Sandbox, answers: tuple[Any, ...], best: str
) -> None:
    parent = parent_graph(sipdo_sub(sandbox, approve=True, prompts=("first FIX", "second FIX")))
    cfg: Any = {"configurable": {"thread_id": f"approve-{answers!r}"}}
    _, interrupts = await drive(parent, {"prompt": INITIAL, "seed_tasks": SEEDS}, cfg)
    seen = []
    for answer in answers:
        assert len(interrupts) == 1, "one pending approval at a time"
        payload = interrupts[0].value
        seen.append(payload["candidate"])
        assert payload["kind"] == "approve_prompt"
        assert payload["broken"] == []
        assert payload["current"] == INITIAL
        assert "+" in payload["diff"]
        snapshot = await parent.aget_state(cfg)
        assert snapshot.next == ("optimize_prompt",)
        events, interrupts = await drive(parent, Command(resume=answer), cfg)
        decided = [e for e in events if e["event"] == "prompt_candidate"]
        assert [e["accepted"] for e in decided] == [answer is True or answer == {"approved": True}]
    assert interrupts == []
    assert seen == ["first FIX", "second FIX"][: len(answers)]
    final = (await parent.aget_state(cfg)).values
    assert final["best_prompt"] == best
    assert final["summary"].endswith(best)


def test_compile_and_invoke_sync(sandbox: Sandbox) -> None:
    g = sipdo_sub(sandbox, approve=False, prompts=("Careful. FIX",))
    out = g.invoke({"prompt": INITIAL, "seed_tasks": SEEDS})
    assert out["best_prompt"] == "Careful. FIX"
    assert set(out) >= {
        "best_prompt",
        "accepted_tasks",
        "rejected_tasks",
        "history",
        "budget_used",
        "stop_reason",
        "iteration",
        "difficulty",
        "prompt_versions",
    }
    assert "failures" not in out  # working state stays inside


@pytest.mark.parametrize("limit", [5, 25])
def test_a_parent_recursion_limit_does_not_cut_the_run_off(sandbox: Sandbox, limit: int) -> None:
    # The sub-run needs more steps than either limit; it keeps its own budget-sized one.
    sub = sipdo_sub(sandbox, approve=False, prompts=("Be exact. FIX",))
    parent = parent_graph(sub)
    cfg: Any = {"configurable": {"thread_id": f"limit-{limit}"}, "recursion_limit": limit}
    out = parent.invoke({"prompt": INITIAL, "seed_tasks": SEEDS}, cfg)
    assert out["best_prompt"] == "Be exact. FIX"
    assert sub.config["recursion_limit"] > limit


def test_a_thread_invoked_again_without_seeds_gets_the_domains_seeds(sandbox: Sandbox) -> None:
    # InputState's documented default holds on every invocation, not only the first:
    # the previous run's seed_tasks are not silently reused.
    graph = create_sipdo_graph(
        world.learner_model(),
        generator_model=world.generator_model(),
        checker_model=world.checker_model(),
        optimizer_model=world.optimizer_model(),
        domain=world.domain(),
        sandbox=sandbox,
        budget=Budget(iterations=1, model_calls=1),  # the seed pass only
        checkpointer=InMemorySaver(),
    )
    cfg: Any = {"configurable": {"thread_id": "seeds-again"}}
    graph.invoke({"prompt": "Be exact. FIX", "seed_tasks": SEEDS[:1]}, cfg)
    assert [t["entry_point"] for t in graph.get_state(cfg).values["seeds"]] == ["rotate_left"]
    graph.invoke({"prompt": "Be exact. FIX"}, cfg)
    shipped = [t["entry_point"] for t in world.domain().seed_tasks()]
    assert [t["entry_point"] for t in graph.get_state(cfg).values["seeds"]] == shipped
    assert len(shipped) > 1
