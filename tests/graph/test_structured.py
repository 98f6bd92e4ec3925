"""Robust structured output: extraction, repair, retries with the error, failure records."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel

from sipdo.errors import ModelOutputError
from sipdo.structured import (
    ainvoke_structured,
    extract_code,
    extract_json,
    invoke_structured,
    parse_structured,
)
from sipdo.testing import ScriptedChatModel


class Plan(BaseModel):
    steps: list[str]
    note: str = ""


MSGS = [SystemMessage(content="sys"), HumanMessage(content="plan it")]


def test_json_from_prose_and_fences() -> None:
    assert extract_json('Sure! ```json\n{"steps": ["a"]}\n``` done') == {"steps": ["a"]}
    assert extract_json('I think {"a": {"b": "}"}} is it') == {"a": {"b": "}"}}
    assert extract_json("[1, 2]") == [1, 2]


def test_raw_newlines_inside_strings_are_repaired() -> None:
    assert extract_json('{"code": "def f():\n\treturn 1"}') == {"code": "def f():\n\treturn 1"}


@pytest.mark.parametrize("bad", ["", "no json", "{unclosed", '{"a": tru}'])
def test_unparseable_raises_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        extract_json(bad)


def test_schema_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="steps"):
        parse_structured('{"note": "x"}', Plan)
    assert parse_structured('{"Plan": {"steps": ["x"]}}', Plan).steps == ["x"]


def test_retry_feeds_the_error_back() -> None:
    model = ScriptedChatModel(["garbage", '{"note": 1}', 'ok: {"steps": ["s"]}'])
    result = invoke_structured(model, MSGS, Plan, retries=2)
    assert result.ok
    assert result.value is not None
    assert result.value.steps == ["s"]
    assert result.attempts == 3
    assert result.stats.calls == 3
    assert "no JSON object" in model.calls[1].messages[-1].content
    assert "steps" in model.calls[2].messages[-1].content
    assert "JSON schema" in model.calls[0].messages[-1].content


async def test_failure_record_after_retries() -> None:
    model = ScriptedChatModel(["x", "y"])
    result = await ainvoke_structured(model, MSGS, Plan, retries=1)
    assert not result.ok
    assert result.value is None
    assert result.attempts == 2
    assert "no JSON" in (result.error or "")
    record = result.failure("plan")
    assert record["what"] == "plan"
    assert record["raw"] == "y"
    assert result.stats.input_tokens > 0


async def test_backend_output_error_counts_as_an_attempt() -> None:
    model = ScriptedChatModel([ModelOutputError("grammar overflow"), '{"steps": []}'])
    result = await ainvoke_structured(model, MSGS, Plan)
    assert result.ok
    assert result.attempts == 2


def test_json_schema_bound_when_backend_asks() -> None:
    model = ScriptedChatModel(['{"steps": ["a"]}'])
    object.__setattr__(model, "sipdo_json_schema", True)
    invoke_structured(model, MSGS, Plan)
    assert model.calls[0].kwargs["json_schema"]["title"] == "Plan"


def test_code_extraction() -> None:
    text = (
        "prose\n```text\nnot code\n```\n```python\ndef other(): pass\n```\n"
        "```py\ndef f(x):\n    return x\n```"
    )
    assert extract_code(text, "f") == "def f(x):\n    return x\n"
    assert extract_code(text) == "def other(): pass\n"
    assert extract_code("def g(): return 1") == "def g(): return 1\n"
    assert extract_code("```\ndef h(): pass") == "def h(): pass\n"
