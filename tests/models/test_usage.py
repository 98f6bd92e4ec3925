"""UsageRecorder: roles, errors, and both places backends put token counts."""

from __future__ import annotations

from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from sipdo.errors import ModelUnavailableError
from sipdo.plugins.models import UsageRecorder, openai_model
from sipdo.plugins.models.usage import tokens_of
from tests.models.flaky_server import flaky_server


def test_errors_and_roles_from_tags_and_default() -> None:
    recorder = UsageRecorder(default_role="learner")
    with flaky_server(["500"]) as server:
        model = openai_model(f"m@{server.url}", max_retries=0)
        try:
            model.invoke("x", config={"callbacks": [recorder], "tags": ["role:optimizer"]})
        except ModelUnavailableError:
            pass
        else:  # pragma: no cover - the server fails this request
            raise AssertionError("expected the 500 to surface")
        model.invoke("y", config={"callbacks": [recorder], "tags": ["role:optimizer"]})
        model.invoke("z", config={"callbacks": [recorder]})
    snap = recorder.snapshot()
    assert set(snap) == {"optimizer", "learner"}
    assert snap["optimizer"].calls == 2
    assert snap["optimizer"].errors == 1
    assert (snap["optimizer"].input_tokens, snap["optimizer"].output_tokens) == (7, 3)
    assert snap["learner"].as_dict() == {
        "calls": 1,
        "errors": 0,
        "input_tokens": 7,
        "output_tokens": 3,
        "latency_s": snap["learner"].latency_s,
        "total_tokens": 10,
    }


def test_tokens_from_usage_metadata_win() -> None:
    message = AIMessage(
        content="x", usage_metadata={"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
    )
    result = LLMResult(
        generations=[[ChatGeneration(message=message)]],
        llm_output={"token_usage": {"prompt_tokens": 99, "completion_tokens": 99}},
    )
    assert tokens_of(result) == (5, 2)


def test_tokens_from_llm_output_when_no_usage_metadata() -> None:
    result = LLMResult(
        generations=[[ChatGeneration(message=AIMessage(content="x"))]],
        llm_output={"token_usage": {"prompt_tokens": 11, "completion_tokens": 4}},
    )
    assert tokens_of(result) == (11, 4)
    assert tokens_of(LLMResult(generations=[[]])) == (0, 0)


def test_snapshot_is_a_copy() -> None:
    recorder = UsageRecorder()
    with flaky_server([]) as server:
        openai_model(f"m@{server.url}").invoke("q", config={"callbacks": [recorder]})
    snap = recorder.snapshot()
    snap["unknown"].calls = 100
    assert recorder.snapshot()["unknown"].calls == 1
