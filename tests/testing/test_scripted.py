"""ScriptedChatModel: order, logging, loud exhaustion, usage, bind, async delay."""

from __future__ import annotations

import asyncio
import time

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel

from sipdo.errors import ScriptExhaustedError
from sipdo.testing import ScriptedChatModel


class Point(BaseModel):
    x: int
    y: int


def test_replays_in_order_and_logs_calls() -> None:
    model = ScriptedChatModel(["one", {"a": 1}, Point(x=1, y=2), AIMessage(content="four")])
    assert isinstance(model, BaseChatModel)
    replies = [model.invoke(f"q{i}").content for i in range(4)]
    assert replies == ["one", '{"a": 1}', '{"x":1,"y":2}', "four"]
    assert [c.messages[-1].content for c in model.calls] == ["q0", "q1", "q2", "q3"]
    assert model.remaining == 0


def test_exhaustion_is_loud() -> None:
    model = ScriptedChatModel(["only"], name="gen")
    model.invoke("a")
    with pytest.raises(ScriptExhaustedError, match=r"gen: call 2 but only 1 responses"):
        model.invoke("b")
    assert len(model.calls) == 2


def test_scripted_exception_is_raised_when_reached() -> None:
    model = ScriptedChatModel([ValueError("backend down"), "after"])
    with pytest.raises(ValueError, match="backend down"):
        model.invoke("a")
    assert model.invoke("b").content == "after"


def test_usage_metadata_is_filled() -> None:
    reply = ScriptedChatModel(["x" * 40]).invoke([HumanMessage(content="y" * 80)])
    assert reply.usage_metadata == {"input_tokens": 20, "output_tokens": 10, "total_tokens": 30}


def test_bind_passes_kwargs_through() -> None:
    model = ScriptedChatModel(["{}"])
    model.bind(json_schema={"type": "object"}).invoke("q")
    assert model.calls[0].kwargs["json_schema"] == {"type": "object"}


def test_responder_mode_answers_by_content() -> None:
    model = ScriptedChatModel(responder=lambda msgs: str(msgs[-1].content).upper())
    assert model.invoke("abc").content == "ABC"
    assert model.invoke("d").content == "D"


async def test_async_delay_overlaps() -> None:
    model = ScriptedChatModel(["a", "b", "c", "d"], delay_s=0.2)
    started = time.perf_counter()
    replies = await asyncio.gather(*(model.ainvoke("q") for _ in range(4)))
    elapsed = time.perf_counter() - started
    assert sorted(r.content for r in replies) == ["a", "b", "c", "d"]
    assert 0.2 <= elapsed < 0.6


def test_unsupported_response_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unsupported scripted response"):
        ScriptedChatModel([42]).invoke("q")  # type: ignore[list-item]
