"""The factory's contract: shape snapshot, plugin resolution, input and budget errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sipdo import create_sipdo_graph as lazy_factory
from sipdo.errors import ConfigurationError, PluginError, UnknownPluginError
from sipdo.graph import Budget, create_sipdo_graph
from sipdo.graph.builder import recursion_limit
from sipdo.plugins.domains.code import CodeDomain
from sipdo.plugins.optimizers.sipdo import SipdoStrategy
from sipdo.testing import ScriptedChatModel

SNAPSHOT = Path(__file__).parent / "snapshots" / "sipdo_graph.mmd"


def test_mermaid_snapshot() -> None:
    drawn = create_sipdo_graph(ScriptedChatModel([])).get_graph().draw_mermaid()
    if os.environ.get("SIPDO_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(drawn)
    assert drawn == SNAPSHOT.read_text()


def test_lazy_reexport_and_compile_options() -> None:
    assert lazy_factory is create_sipdo_graph
    g = create_sipdo_graph(ScriptedChatModel([]), name="mine", budget=Budget(iterations=5))
    assert g.name == "mine"
    assert g.config is not None
    assert g.config["recursion_limit"] == recursion_limit(Budget(iterations=5))
    assert set(g.get_graph().nodes) >= {"learner", "generator", "checker", "verifier", "optimizer"}


def test_unknown_plugins_list_available_names() -> None:
    with pytest.raises(UnknownPluginError, match=r"unknown domain 'nope'; available: .*code"):
        create_sipdo_graph(ScriptedChatModel([]), domain="nope")
    with pytest.raises(UnknownPluginError, match=r"available: .*sipdo"):
        create_sipdo_graph(ScriptedChatModel([]), strategy="gepa-typo")


def test_plugin_instances_and_bad_objects() -> None:
    create_sipdo_graph(ScriptedChatModel([]), domain=CodeDomain(), strategy=SipdoStrategy())
    with pytest.raises(PluginError, match="does not implement Domain"):
        create_sipdo_graph(ScriptedChatModel([]), domain=object())  # type: ignore[arg-type]


def test_model_spec_errors() -> None:
    with pytest.raises(ConfigurationError):
        create_sipdo_graph("")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"iterations": 0},
        {"max_refinements": -1},
        {"tasks_per_iteration": True},
        {"model_calls": -5},
        {"tokens": {"learner": "many"}},
        {"sandbox_seconds": float("nan")},
    ],
)
def test_bad_budgets(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="Budget"):
        Budget(**kwargs)


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"prompt": ""}, "non-empty 'prompt'"),
        ({"prompt": 3}, "non-empty 'prompt'"),
        ({"prompt": "p", "seed_tasks": "x"}, "must be a list"),
        (
            {"prompt": "p", "seed_tasks": [{"prompt": "no entry point"}]},
            r"seed task 0: invalid code task",
        ),
        ({"prompt": "p", "seed_tasks": [7]}, "seed task 0: a code task must be an object"),
    ],
)
async def test_bad_input_is_a_clear_error(state: dict[str, Any], match: str) -> None:
    model = ScriptedChatModel([])
    g = create_sipdo_graph(model)
    with pytest.raises(ConfigurationError, match=match):
        await g.ainvoke(state)
    assert model.calls == []  # nothing was spent on bad input


async def test_run_store_needs_a_run_id() -> None:
    g = create_sipdo_graph(ScriptedChatModel([]), run_store=object())
    with pytest.raises(ConfigurationError, match="run_id"):
        await g.ainvoke({"prompt": "p", "seed_tasks": []})


def test_budget_exceeded_rules() -> None:
    used = {
        "model_calls": {"learner": 3, "generator": 1},
        "input_tokens": {"learner": 50},
        "output_tokens": {"learner": 10},
        "sandbox_seconds": 1.5,
    }
    assert Budget(model_calls=4).exceeded(used) == "budget:model_calls"
    assert Budget(model_calls=5).exceeded(used) is None
    assert Budget(model_calls={"generator": 2}).exceeded(used) is None
    assert Budget(model_calls={"learner": 3}).exceeded(used) == "budget:model_calls"
    assert Budget(tokens=60).exceeded(used) == "budget:tokens"
    assert Budget(tokens={"checker": 1}).exceeded(used) is None
    assert Budget(sandbox_seconds=1.0).exceeded(used) == "budget:sandbox_seconds"


def test_open_roles_take_role_defaults_only_without_a_learner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """model=None: each role gets its own default; a given learner is shared by open roles."""
    import sipdo.graph.builder as builder

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    for var in ("SIPDO_MODEL", "SIPDO_GENERATOR_MODEL", "SIPDO_OPTIMIZER_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SIPDO_CHECKER_MODEL", "openai:gpt-4.1-nano")
    seen: list[tuple[str, str | None]] = []
    real = builder.resolve_model

    def spy(spec: Any, *, role: str) -> Any:
        model = real(spec, role=role)
        seen.append((role, getattr(model, "model_name", None)))
        return model

    monkeypatch.setattr(builder, "resolve_model", spy)
    builder.create_sipdo_graph(None)
    assert dict(seen) == {
        "learner": "gpt-4o-mini",
        "generator": "gpt-4o-mini",
        "checker": "gpt-4.1-nano",
        "optimizer": "gpt-4o-mini",
    }
    seen.clear()
    builder.create_sipdo_graph("openai:gpt-4o")
    assert seen == [("learner", "gpt-4o")]


def test_every_entry_point_defaults_to_the_same_strategy() -> None:
    # the documented default (sipdo x statistical): the library, `sipdo run` and the server
    import inspect

    from sipdo.cli.run import RunOptions
    from sipdo.plugins.optimizers import DEFAULT_STRATEGY
    from sipdo.serve.config import ServerSettings

    params = inspect.signature(create_sipdo_graph).parameters
    assert DEFAULT_STRATEGY == "sipdo"
    assert params["strategy"].default == DEFAULT_STRATEGY
    assert params["gate"].default == "statistical"
    assert RunOptions().strategy == DEFAULT_STRATEGY
    assert RunOptions().gate == "statistical"
    assert ServerSettings(models={}, configured=False, allowed_models=()).strategy == "sipdo"
