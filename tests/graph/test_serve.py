"""``langgraph.json`` points at a factory that builds the graph from the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sipdo.plugins.registry import load_target

ROOT = Path(__file__).resolve().parents[2]


def test_langgraph_json_serves_the_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert config["dependencies"] == ["."]
    path, _, attr = config["graphs"]["sipdo"].partition(":")
    assert (ROOT / path).is_file()
    module = path.removeprefix("./").removesuffix(".py").replace("/", ".")
    factory = load_target(f"{module}:{attr}")
    # An OpenAI-compatible endpoint: building the client opens no connection.
    monkeypatch.setenv("SIPDO_MODEL", "openai:served-model@http://127.0.0.1:9/v1")
    monkeypatch.setenv("SIPDO_CHECKER_MODEL", "openai:checker-model@http://127.0.0.1:9/v1")
    graph = factory()
    assert graph.name == "sipdo"
    nodes = set(graph.get_graph().nodes)
    assert {"learner", "generator", "checker", "verifier", "optimizer"} <= nodes


def test_factory_rejects_unknown_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    from sipdo.errors import UnknownPluginError
    from sipdo.graph.serve import make_graph

    monkeypatch.setenv("SIPDO_MODEL", "openai:m@http://127.0.0.1:9/v1")
    monkeypatch.setenv("SIPDO_DOMAIN", "poetry")
    with pytest.raises(UnknownPluginError, match="available: code"):
        make_graph()
