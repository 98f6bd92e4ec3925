"""Hypothesis-generated garbage from every role never crashes the graph.

Each role answers from a drawn list of replies: free text, broken and
near-miss JSON (right field names, wrong types), code fences with junk, and
sometimes a reply that parses but holds nonsense code, so the verifiers see
garbage too. The run must end with a stop reason and keep its records sane.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import BaseMessage

from sipdo.graph import Budget, create_sipdo_graph
from sipdo.sandbox import Sandbox
from sipdo.testing import ScriptedChatModel
from tests.graph import world

FIELDS = [
    "prompt",
    "entry_point",
    "reference_solution",
    "tests",
    "weakness",
    "failure_modes",
    "pattern",
    "recommendations",
    "rationale",
    "summary",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)
near_miss = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6).map(json.dumps)
junk_code = st.text(max_size=80).map(lambda t: f"```python\n{t}\n```")
plausible_task = st.builds(
    lambda name, body: json.dumps(
        {
            "prompt": f"def {name}(x):\n    'doc'",
            "entry_point": name,
            "reference_solution": f"def {name}(x):\n    {body}",
            "tests": f"from solution import {name}\ndef test_it():\n    assert {name}(1) == 1",
        }
    ),
    st.sampled_from(["f", "g1", "clamp", "rotate_left", "def", "x y"]),
    st.sampled_from(
        ["return x", "return None", "while True: pass", "import os; os._exit(3)", ")("]
    ),
)
garbage = st.one_of(
    st.text(max_size=200),
    near_miss,
    junk_code,
    plausible_task,
    st.text(max_size=50).map(lambda t: "{" + t),
    st.just('{"failure_modes": [{"pattern": "p"}]}'),
    st.just('{"recommendations": ["r"]}'),
    st.just('{"prompt": "new prompt"}'),
)


def cycling(replies: list[str], name: str) -> ScriptedChatModel:
    source = itertools.cycle(replies)

    def respond(_messages: list[BaseMessage]) -> str:
        return next(source)

    return ScriptedChatModel(responder=respond, name=name)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    learner=st.lists(garbage, min_size=1, max_size=4),
    generator=st.lists(garbage, min_size=1, max_size=4),
    checker=st.lists(garbage, min_size=1, max_size=4),
    optimizer=st.lists(garbage, min_size=1, max_size=6),
)
def test_garbage_never_crashes(
    sandbox: Sandbox,
    learner: list[str],
    generator: list[str],
    checker: list[str],
    optimizer: list[str],
) -> None:
    g = create_sipdo_graph(
        cycling(learner, "learner"),
        generator_model=cycling(generator, "generator"),
        checker_model=cycling(checker, "checker"),
        optimizer_model=cycling(optimizer, "optimizer"),
        domain=world.domain(),
        sandbox=sandbox,
        budget=Budget(iterations=1, tasks_per_iteration=1, max_refinements=1),
    )
    out: dict[str, Any] = g.invoke({"prompt": "solve", "seed_tasks": [world.SEEDS["rotate_left"]]})
    assert out["stop_reason"] in {"iterations", "no_errors"} or out["stop_reason"].startswith(
        "budget:"
    )
    assert isinstance(out["best_prompt"], str)
    assert out["best_prompt"]
    assert all(r["reason"] for r in out["rejected_tasks"])
    assert len(out["accepted_tasks"]) + len(out["rejected_tasks"]) <= 1
    json.dumps(out)  # the state stays JSON-serializable
    attempts = [h for h in out["history"] if h["kind"] == "prompt_attempt"]
    assert all(a["feedback"] for a in attempts)
