"""Embed the SIPDO loop as a subgraph of your own LangGraph agent.

The parent graph drafts a system prompt, hands it to the compiled sipdo graph
(a node like any other), streams its progress events, pauses for a human to
approve each prompt change, then deploys the result. The checkpointer is the
parent's; the sipdo subgraph inherits it.

    .venv/bin/python examples/embed_in_agent.py                 # scripted models, offline
    .venv/bin/python examples/embed_in_agent.py --model openai:gpt-4o-mini --yes

With no ``--model`` every role is played by ``sipdo.testing.ScriptedChatModel``
(answers that depend on the prompt), while the tasks are still verified for
real in the sandbox.
"""

from __future__ import annotations

import argparse
import re
from typing import Any, NotRequired, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from sipdo.graph import Budget, create_sipdo_graph
from sipdo.plugins.domains.code import CodeDomain
from sipdo.sandbox import open_sandbox
from sipdo.testing import ScriptedChatModel


class AgentState(TypedDict):
    prompt: str
    seed_tasks: NotRequired[list[dict[str, Any]]]
    best_prompt: NotRequired[str]
    stop_reason: NotRequired[str]
    deployed: NotRequired[str]


def scripted_roles() -> dict[str, BaseChatModel]:
    """Offline stand-ins: the learner gets tasks right once its prompt says 'edge cases'."""
    refs = {t["entry_point"]: t["reference_solution"] for t in CodeDomain().seed_tasks()}

    def entry(messages: list[BaseMessage]) -> str:
        found = re.findall(r"def\s+(\w+)\s*\(", str(messages[-1].content))
        return found[0] if found else "f"

    def learner(messages: list[BaseMessage]) -> str:
        name = entry(messages)
        good = "edge cases" in str(messages[0].content) or name == "rotate_left"
        code = refs.get(name, "") if good else f"def {name}(*args):\n    return None\n"
        return f"```python\n{code}```"

    def checker(messages: list[BaseMessage]) -> str:
        return f"```python\n{refs.get(entry(messages), '')}```"

    gen = CodeDomain().seed_tasks()[4]  # a task the run has not seen as a seed
    return {
        "model": ScriptedChatModel(responder=learner, name="learner"),
        "generator_model": ScriptedChatModel(
            [{k: gen[k] for k in ("prompt", "entry_point", "reference_solution", "tests")}]
        ),
        "checker_model": ScriptedChatModel(responder=checker, name="checker"),
        "optimizer_model": ScriptedChatModel(
            [
                {"failure_modes": [{"pattern": "stub answers", "cause": "prompt too vague"}]},
                {"recommendations": ["ask for complete implementations that handle edge cases"]},
                {
                    "prompt": "Write complete Python functions and handle all edge cases.",
                    "rationale": "x",
                },
            ]
        ),
    }


def build_agent(roles: dict[str, Any], sandbox: Any) -> Any:
    sipdo = create_sipdo_graph(
        roles.pop("model"),
        **roles,
        sandbox=sandbox,
        budget=Budget(iterations=1, tasks_per_iteration=1),
        approve_prompts=True,
    )

    def draft(state: AgentState) -> dict[str, Any]:
        return {"prompt": state["prompt"].strip() or "Write Python functions."}

    def deploy(state: AgentState) -> dict[str, Any]:
        return {"deployed": state["best_prompt"]}

    g = StateGraph(AgentState)
    g.add_node("draft", draft)
    g.add_node("optimize", sipdo)  # the compiled sipdo graph is just a node
    g.add_node("deploy", deploy)
    g.add_edge(START, "draft")
    g.add_edge("draft", "optimize")
    g.add_edge("optimize", "deploy")
    g.add_edge("deploy", END)
    return g.compile(checkpointer=InMemorySaver())


def main() -> None:
    parser = argparse.ArgumentParser(description="SIPDO as a subgraph with human approval")
    parser.add_argument("--model", help="a model spec for every role (default: scripted)")
    parser.add_argument("--yes", action="store_true", help="approve every prompt change")
    args = parser.parse_args()
    roles: dict[str, Any] = {"model": args.model} if args.model else scripted_roles()
    seeds = CodeDomain().seed_tasks()[1:3]
    config: Any = {"configurable": {"thread_id": "example"}}
    with open_sandbox("auto") as sandbox:
        agent = build_agent(roles, sandbox)
        value: Any = {"prompt": "Write Python functions.", "seed_tasks": seeds}
        while True:
            pending = None
            for _ns, mode, chunk in agent.stream(
                value, config, stream_mode=["custom", "updates"], subgraphs=True
            ):
                if mode == "custom":
                    print("event:", {k: v for k, v in chunk.items() if k not in ("used", "limits")})
                elif "__interrupt__" in chunk:
                    pending = chunk["__interrupt__"][0].value
            if pending is None:
                break
            print("\nproposed prompt change:\n" + pending["diff"] + "\n" + pending["feedback"])
            ok = args.yes or input("approve? [y/N] ").strip().lower() in ("y", "yes")
            value = Command(resume=ok)
        print("\ndeployed prompt:", agent.get_state(config).values["deployed"])


if __name__ == "__main__":
    main()
