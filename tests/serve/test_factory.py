"""The served factory in process: settings parsed and checked, one sandbox and one graph
per distinct configuration, schemas LangGraph Server can show, the settings middleware."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from sipdo.errors import ConfigurationError, UnknownPluginError
from sipdo.graph.serve import build_graph, make_graph
from sipdo.plugins.registry import load_target
from sipdo.serve import ServeConfig, ServerSettings, get_runtime, parse_config, reset_runtime
from sipdo.serve.app import SettingsCheck
from sipdo.serve.runtime import NO_MODEL

ROOT = Path(__file__).resolve().parents[2]
URL = "http://127.0.0.1:9/v1"  # building an OpenAI client opens no connection


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("SIPDO_GENERATOR_MODEL", "SIPDO_CHECKER_MODEL", "SIPDO_OPTIMIZER_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SIPDO_MODEL", f"openai:served@{URL}")
    monkeypatch.setenv("SIPDO_SANDBOX", "process")
    monkeypatch.setenv("SIPDO_SERVE_MODELS", f"openai:*@{URL}")
    reset_runtime()
    yield
    reset_runtime()


def test_langgraph_json_serves_the_factory_and_the_app() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["dependencies"] == ["."]
    for target in (config["graphs"]["sipdo"], config["http"]["app"]):
        path, _, attr = target.partition(":")
        assert (ROOT / path).is_file()
        module = path.removeprefix("./").removesuffix(".py").replace("/", ".")
        assert load_target(f"{module}:{attr}") is not None


async def test_factory_builds_from_configurable_and_shares_one_sandbox(served: None) -> None:
    first = await make_graph({"configurable": {"thread_id": "t", "budget": {"iterations": 1}}})
    again = await make_graph({"configurable": {"thread_id": "u", "budget": {"iterations": 1}}})
    other = await make_graph({"configurable": {"approve_prompts": True}})
    assert first is again  # equal settings: the cached graph
    assert other is not first
    assert {"learner", "generator", "checker", "verifier", "optimizer", "approve"} <= set(
        first.get_graph().nodes
    )
    status = get_runtime().status()
    assert status["sandboxes_opened"] == 1
    assert status["sandbox"] == "ProcessSandbox"
    assert status["graphs_built"] == 2
    # the recursion limit follows the run's budget
    assert first.config is not None
    assert other.config is not None
    assert first.config["recursion_limit"] < other.config["recursion_limit"]


def test_schemas_are_introspectable(served: None) -> None:
    graph = build_graph()
    inp, out = graph.get_input_jsonschema(), graph.get_output_jsonschema()
    assert {"prompt", "seed_tasks"} <= set(inp["properties"])
    assert {"best_prompt", "accepted_tasks", "history"} <= set(out["properties"])
    ctx = graph.get_context_jsonschema()
    assert ctx is not None
    assert {"model", "budget", "approve_prompts", "domain", "strategy", "gate"} <= set(
        ctx["properties"]
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"budget": {"iterations": 0}}, "budget.iterations: Input should be greater than"),
        ({"budget": {"iteratons": 2}}, "budget.iteratons: Extra inputs"),
        ({"approve_prompts": "sometimes"}, "approve_prompts: Input should be a valid boolean"),
    ],
)
def test_bad_settings_name_the_setting(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        parse_config(values)
    assert isinstance(info.value, ValueError)  # what LangGraph Server passes through


def test_unknown_context_key_is_refused_but_configurable_keys_pass() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown sipdo setting.*budgett"):
        parse_config({"budgett": {}}, strict=True)
    assert parse_config({"thread_id": "x", "seed": 3}) == ServeConfig(seed=3)


def test_served_budget_is_capped_by_default() -> None:
    budget = parse_config({}).budget.to_budget()
    assert budget.model_calls is not None
    assert budget.tokens is not None
    assert parse_config({"budget": {"model_calls": None}}).budget.model_calls is None


def test_models_outside_the_allow_list_are_refused(served: None) -> None:
    settings = ServerSettings.from_env()
    assert settings.model_for("checker", ServeConfig()) == f"openai:served@{URL}"
    config = ServeConfig(model=f"openai:other@{URL}")
    assert settings.model_for("generator", config) == f"openai:other@{URL}"  # shares the learner's
    with pytest.raises(ConfigurationError, match="not allowed on this server"):
        settings.model_for("learner", ServeConfig(model="openai:gpt-4o@https://evil.example/v1"))


async def test_unknown_domain_reaches_the_caller(served: None) -> None:
    with pytest.raises(UnknownPluginError, match="available: code"):
        await make_graph({"configurable": {"domain": "poetry"}})


def test_no_model_configured_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SIPDO_MODEL", "SIPDO_GENERATOR_MODEL", "SIPDO_CHECKER_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("SIPDO_OPTIMIZER_MODEL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    reset_runtime()
    try:
        with pytest.raises(ConfigurationError) as info:
            get_runtime().start()
        assert str(info.value) == NO_MODEL
        assert get_runtime().status()["sandboxes_opened"] == 0
    finally:
        reset_runtime()


CREATED = "0b6c5c2e-0000-4000-8000-000000000001"  # an assistant of the sipdo graph
OTHER = "0b6c5c2e-0000-4000-8000-000000000002"  # an assistant of another graph


def _echo_app() -> SettingsCheck:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"got": await request.json()})

    async def assistant(request: Request) -> JSONResponse:
        graph = {CREATED: "sipdo", OTHER: "agent"}.get(request.path_params["aid"])
        if graph is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return JSONResponse({"assistant_id": request.path_params["aid"], "graph_id": graph})

    routes = [
        Route("/threads/{tid}/runs/stream", echo, methods=["POST"]),
        Route("/assistants", echo, methods=["POST"]),
        Route("/assistants/{aid}", assistant, methods=["GET"]),
        Route("/assistants/{aid}", echo, methods=["PATCH"]),
    ]
    return SettingsCheck(Starlette(routes=routes))


def test_middleware_rejects_bad_settings_and_passes_good_bodies(served: None) -> None:
    client = TestClient(_echo_app())
    good = {"assistant_id": "sipdo", "input": {"prompt": "p"}, "context": {"seed": 1}}
    response = client.post("/threads/t1/runs/stream", json=good)
    assert response.status_code == 200
    assert response.json() == {"got": good}  # the body reached the server intact
    bad = {"assistant_id": "sipdo", "context": {"budget": {"iterations": -1}}}
    response = client.post("/threads/t1/runs/stream", json=bad)
    assert response.status_code == 422
    assert "budget.iterations" in response.json()["detail"]
    typo = {"graph_id": "sipdo", "context": {"aprove_prompts": True}}
    response = client.post("/assistants", json=typo)
    assert response.status_code == 422
    assert "aprove_prompts" in response.json()["detail"]
    model = {"graph_id": "sipdo", "config": {"configurable": {"model": "openai:x@http://h/v1"}}}
    response = client.post("/assistants", json=model)
    assert response.status_code == 422
    assert "not allowed on this server" in response.json()["detail"]
    # another graph's settings are not ours to judge
    other = {"graph_id": "agent", "context": {"budget": "lots"}}
    assert client.post("/assistants", json=other).status_code == 200
    run = {"assistant_id": OTHER, "context": {"budget": "lots"}}
    assert client.post("/threads/t1/runs/stream", json=run).status_code == 200
    # an assistant created through the API is looked up: its graph is sipdo
    run = {"assistant_id": CREATED, "context": {"budgett": {}}}
    response = client.post("/threads/t1/runs/stream", json=run)
    assert response.status_code == 422
    assert "unknown sipdo setting(s) budgett" in response.json()["detail"]
    patch = {"context": {"gate": "lenient"}}
    response = client.patch(f"/assistants/{CREATED}", json=patch)
    assert response.status_code == 422
    assert "unknown gate 'lenient'" in response.json()["detail"]


async def test_a_registered_model_serves_a_run_with_its_budget(served: None) -> None:
    from tests.graph import world

    get_runtime().register_model("scripted:learner", world.learner_model())
    graph = await make_graph(
        {"configurable": {"model": "scripted:learner", "budget": {"model_calls": 1}}}
    )
    seed = world.SEEDS["chunk"]
    out = await graph.ainvoke({"prompt": "You write Python functions.", "seed_tasks": [seed]})
    assert out["stop_reason"] == "budget:model_calls"
    assert out["budget_used"]["model_calls"] == {"learner": 1}


def test_bad_server_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIPDO_MODEL", f"openai:served@{URL}")
    monkeypatch.setenv("SIPDO_SANDBOX", "vm")
    with pytest.raises(ConfigurationError, match="SIPDO_SANDBOX='vm'"):
        ServerSettings.from_env()
    monkeypatch.setenv("SIPDO_SANDBOX", "docker")
    monkeypatch.setenv("SIPDO_SANDBOX_POOL", "0")
    with pytest.raises(ConfigurationError, match="SIPDO_SANDBOX_POOL"):
        ServerSettings.from_env()


async def test_a_held_out_benchmark_is_a_setting_and_server_files_are_not(served: None) -> None:
    assert parse_config({"holdout": "humaneval:3"}).holdout == "humaneval:3"
    with pytest.raises(ConfigurationError, match="holdout: String should match"):
        parse_config({"holdout": "/etc/passwd"})
    graph = await make_graph({"configurable": {"holdout": "humaneval:2"}})
    assert graph is not None
    runtime = get_runtime()
    assert runtime.graphs_built >= 1
    for bad in ("mbpp:5", "tasks"):  # not a benchmark (a file in the server's directory?)
        with pytest.raises(ConfigurationError, match="not a held-out benchmark"):
            await make_graph({"configurable": {"holdout": bad}})


async def test_demonstrations_are_a_setting_with_bounds(served: None) -> None:
    assert parse_config({}).demonstrations == 0
    assert parse_config({"demonstrations": 3}).demonstrations == 3
    for bad in (-1, 17, "many"):
        with pytest.raises(ConfigurationError, match="demonstrations"):
            parse_config({"demonstrations": bad})
    graph = await make_graph({"configurable": {"demonstrations": 2}})
    assert graph is not None
