"""The offline backend on the real Qwen2.5-Coder-0.5B model (slow: real inference)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from sipdo.errors import ConfigurationError, ModelError, ModelUnavailableError
from sipdo.plugins.models import ChatLocalLlama, UsageRecorder, resolve_model
from sipdo.plugins.models.llama import load_llama, looping

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(gguf_05b: Path) -> ChatLocalLlama:
    resolved = resolve_model("local:qwen2.5-coder-0.5b")
    assert isinstance(resolved, ChatLocalLlama)
    assert Path(resolved.model_path) == gguf_05b
    return resolved.model_copy(update={"temperature": 0.0, "max_tokens": 24})


def test_answers_with_usage_metadata(model: ChatLocalLlama) -> None:
    reply = model.invoke(
        [SystemMessage("Answer with one word."), HumanMessage("What is the capital of France?")]
    )
    assert isinstance(reply, AIMessage)
    assert "paris" in str(reply.content).lower()
    usage = reply.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] > 10
    assert 0 < usage["output_tokens"] <= 24
    assert reply.response_metadata["model_name"] == "qwen2.5-coder-0.5b"


def test_json_schema_constrained_output_parses(model: ChatLocalLlama) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["name", "year"],
    }
    bound = model.bind(json_schema=schema, max_tokens=48)
    reply = bound.invoke("Python was created by Guido van Rossum in 1991. Give name and year.")
    data = json.loads(str(reply.content))
    assert set(data) >= {"name", "year"}
    assert isinstance(data["year"], int)
    assert isinstance(data["name"], str)


def test_stop_sequences(model: ChatLocalLlama) -> None:
    prompt = "Write the numbers 1 to 9 separated by commas, nothing else."
    full = str(model.invoke(prompt).content)
    assert "5" in full  # without a stop it goes past 5
    cut = model.invoke(prompt, stop=["5"])
    assert "5" not in str(cut.content)
    assert "6" not in str(cut.content)
    assert "3" in str(cut.content)
    assert cut.response_metadata["finish_reason"] == "stop"


async def test_async_calls_share_one_model_without_blocking_the_loop(
    model: ChatLocalLlama,
) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    replies = await asyncio.gather(model.ainvoke("Say hi."), model.ainvoke("Say bye."))
    elapsed = time.perf_counter() - started
    task.cancel()
    assert all(str(r.content).strip() for r in replies)
    assert ticks >= int(elapsed / 0.05) // 2  # the loop kept running during inference


def test_model_is_loaded_once_per_file(model: ChatLocalLlama) -> None:
    first = load_llama(Path(model.model_path), n_ctx=model.n_ctx)
    again = resolve_model("local:qwen2.5-coder-0.5b")
    assert isinstance(again, ChatLocalLlama)
    assert load_llama(Path(again.model_path), n_ctx=again.n_ctx) is first


def test_usage_recorder_on_real_local_responses(model: ChatLocalLlama) -> None:
    recorder = UsageRecorder()
    config = {"callbacks": [recorder], "metadata": {"sipdo_role": "learner"}}
    reply = model.invoke("Say ok.", config=config)  # type: ignore[arg-type]
    usage = recorder.snapshot()["learner"]
    assert reply.usage_metadata is not None
    assert usage.calls == 1
    assert usage.input_tokens == reply.usage_metadata["input_tokens"]
    assert usage.output_tokens == reply.usage_metadata["output_tokens"]
    assert usage.latency_s > 0


def test_corrupt_gguf_is_unavailable(tmp_path: Path, gguf_05b: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(gguf_05b.read_bytes()[:4096])  # a truncated download
    model = resolve_model(str(bad))
    with pytest.raises(ModelUnavailableError, match=r"cannot load .*broken\.gguf"):
        model.invoke("hi")


def test_unknown_option_is_a_configuration_error(model: ChatLocalLlama) -> None:
    with pytest.raises(ConfigurationError, match="bad option"):
        model.invoke("hi", no_such_option=1)


def test_context_overflow_is_a_model_error(model: ChatLocalLlama) -> None:
    small = model.model_copy(update={"n_ctx": 64})
    with pytest.raises(ModelError, match="local model failed"):
        small.invoke("word " * 200)


def test_offline_default_learner_is_the_local_05b(
    monkeypatch: pytest.MonkeyPatch, gguf_05b: Path
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("SIPDO_MODEL", raising=False)
    model = resolve_model(None, role="learner")
    assert isinstance(model, ChatLocalLlama)
    assert model.model_name == "qwen2.5-coder-0.5b"
    assert Path(model.model_path) == gguf_05b


@pytest.mark.parametrize(
    ("text", "loops"),
    [
        ("x = 1\n" * 8 + "x =", True),
        ("a\nb\n" * 8, True),
        ("a\nb\nc\n" * 8, True),
        ("x = 1\n" * 7, False),
        ("x = 1\n\n" * 7 + "x = 1", False),  # the unfinished last line does not count
        ("".join(f"assert f({i}) == {i}\n" for i in range(40)), False),
        ("def f():\n    pass\n" * 3, False),
    ],
)
def test_looping_detects_repeated_blocks_only(text: str, loops: bool) -> None:
    assert looping(text) is loops


def test_repetition_guard_ends_a_looping_reply_early(model: ChatLocalLlama) -> None:
    looper = model.model_copy(update={"max_tokens": 400})
    ask = "Output the line `x = 1` forty times, one per line, no numbering, nothing else."
    reply = looper.invoke([HumanMessage(ask)])
    usage = reply.usage_metadata
    assert usage is not None
    assert reply.response_metadata.get("stopped_repeating") is True
    assert str(reply.content).count("x = 1") < 40
    assert usage["output_tokens"] < 120


def test_repetition_guard_leaves_ordinary_code_alone(model: ChatLocalLlama) -> None:
    coder = model.model_copy(update={"max_tokens": 200})
    reply = coder.invoke([HumanMessage("Write a Python function that adds two numbers.")])
    assert "stopped_repeating" not in reply.response_metadata
    assert "def " in str(reply.content)
