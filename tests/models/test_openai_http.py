"""OpenAI-compatible client over real HTTP against a server that fails on cue."""

from __future__ import annotations

import json
import socket

import pytest
from langchain_core.messages import AIMessage

from sipdo.errors import ModelOutputError, ModelUnavailableError
from sipdo.plugins.models import UsageRecorder, openai_model, resolve_model
from tests.models.flaky_server import flaky_server


def _model(url: str) -> object:
    return openai_model(f"m@{url}", max_retries=2, timeout=10)


@pytest.mark.parametrize("fault", ["500", "garbage", "no_choices"])
def test_one_fault_then_the_answer(fault: str) -> None:
    with flaky_server([fault]) as server:
        model = resolve_model(f"openai:m@{server.url}")
        reply = model.invoke("ping")
    assert reply.content == "echo: ping"
    assert server.modes == [fault, "ok"]
    assert server.requests[0] == server.requests[1]  # the same request, resent whole


async def test_async_recovers_too() -> None:
    with flaky_server(["garbage", "500"]) as server:
        model = resolve_model(f"openai:m@{server.url}")
        reply = await model.ainvoke("pong")
    assert reply.content == "echo: pong"
    assert server.modes == ["garbage", "500", "ok"]


def test_server_that_keeps_failing_is_unavailable() -> None:
    with flaky_server(["500"] * 10) as server:
        model = _model(server.url)
        with pytest.raises(ModelUnavailableError, match="unavailable"):
            model.invoke("ping")  # type: ignore[attr-defined]
    assert server.modes == ["500"] * 3  # first try + max_retries=2


def test_server_that_keeps_sending_garbage_is_an_output_error() -> None:
    with flaky_server(["garbage"] * 10) as server:
        model = _model(server.url)
        with pytest.raises(ModelOutputError, match="after 3 attempts"):
            model.invoke("ping")  # type: ignore[attr-defined]
    assert len(server.requests) == 3


def test_nothing_listening_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = openai_model(f"m@http://127.0.0.1:{port}/v1", max_retries=0, timeout=5)
    with pytest.raises(ModelUnavailableError):
        model.invoke("ping")


def test_json_schema_binding_sends_response_format_and_repairs_strings() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}
    with flaky_server([], content='{"code": "def f():\n    return 1"}') as server:
        model = resolve_model(f"openai:m@{server.url}")
        assert getattr(model, "sipdo_json_schema", False)
        reply = model.bind(json_schema=schema).invoke("write f")
    sent = server.requests[0]["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["schema"] == schema
    assert isinstance(reply, AIMessage)
    assert json.loads(str(reply.content)) == {"code": "def f():\n    return 1"}


def test_usage_recorder_counts_real_http_responses() -> None:
    recorder = UsageRecorder()
    with flaky_server(["500"]) as server:
        model = resolve_model(f"openai:m@{server.url}")
        config = {"callbacks": [recorder], "metadata": {"sipdo_role": "checker"}}
        model.invoke("a", config=config)  # type: ignore[arg-type]
        model.invoke("b", config=config)  # type: ignore[arg-type]
    usage = recorder.snapshot()["checker"]
    assert (usage.calls, usage.errors) == (2, 0)
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (14, 6, 20)
    assert usage.latency_s > 0


def test_server_refusing_json_schema_gets_json_object_with_schema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    with flaky_server(["garbage"], content='{"n": 1}', json_object_only=True) as server:
        model = resolve_model(f"openai:m@{server.url}")
        bound = model.bind(json_schema=schema)
        assert json.loads(str(bound.invoke("one").content)) == {"n": 1}
        assert json.loads(str(bound.invoke("two").content)) == {"n": 1}
    assert server.modes == ["422", "garbage", "ok", "ok"]  # format learned once, kept
    assert [r["response_format"]["type"] for r in server.requests] == [
        "json_schema",
        "json_object",
        "json_object",
        "json_object",
    ]
    assert server.requests[-1]["response_format"]["schema"] == schema
