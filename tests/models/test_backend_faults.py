"""A model server that is rate-limiting, hung, down or restarted, over real HTTP.

The server is ``flaky_server`` (a real socket server in a thread). Each test
states what the call met and asserts what the client did: when it waited, what
it sent again, when it gave up and what the error names.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import pytest

from sipdo.errors import ModelBackendDownError, ModelUnavailableError
from sipdo.plugins.models import RetryPolicy, UsageRecorder, openai_model, resolve_model
from sipdo.plugins.models.openai_compat import SipdoChatOpenAI
from tests.models.flaky_server import flaky_server

FAST = RetryPolicy(retry_for_s=30, backoff_s=0.1, max_backoff_s=0.2)


def _model(url: str, **options: Any) -> SipdoChatOpenAI:
    options.setdefault("retry_policy", FAST)
    model = openai_model(f"m@{url}", **options)
    assert isinstance(model, SipdoChatOpenAI)
    return model


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_429_with_retry_after_waits_that_long_then_resends() -> None:
    with flaky_server(["429"], retry_after="1") as server:
        started = time.monotonic()
        reply = _model(server.url).invoke("ping")
        elapsed = time.monotonic() - started
    assert reply.content == "echo: ping"
    assert server.modes == ["429", "ok"]
    assert server.requests[0] == server.requests[1]
    assert elapsed >= 1.0  # the server's Retry-After, not the 0.1 s backoff


async def test_429_asking_past_the_limit_stops_at_once_naming_the_backend() -> None:
    with flaky_server(["429"] * 5, retry_after="3600") as server:
        model = _model(server.url, retry_policy=RetryPolicy(retry_for_s=60))
        started = time.monotonic()
        with pytest.raises(ModelBackendDownError) as caught:
            await model.ainvoke("ping")
        elapsed = time.monotonic() - started
    message = str(caught.value)
    assert f"m at {server.url}" in message
    assert "HTTP 429" in message
    assert "asks to wait 3600 s (Retry-After)" in message
    assert server.modes == ["429"]  # no point waiting an hour inside a 60 s limit
    assert elapsed < 5
    assert caught.value.attempts == 1


def test_hung_server_times_out_each_attempt_then_gives_up() -> None:
    policy = RetryPolicy(retry_for_s=2.5, backoff_s=0.2, max_backoff_s=0.2)
    with flaky_server(["hang"] * 10) as server:
        model = _model(server.url, timeout=1.0, retry_policy=policy)
        started = time.monotonic()
        with pytest.raises(ModelBackendDownError, match=r"no answer within the 1\.0 s timeout"):
            model.invoke("ping")
        elapsed = time.monotonic() - started
    # Attempts at ~0, ~1.2, ~2.4 s fail after 1 s each; the next would start past 1 + 2.5 s.
    assert 3 <= len(server.requests) <= 4
    assert all(body == server.requests[0] for body in server.requests)
    assert 3.0 <= elapsed < 8.0


async def test_one_hang_then_an_answer() -> None:
    recorder = UsageRecorder()
    with flaky_server(["hang"]) as server:
        model = _model(server.url, timeout=1.0)
        reply = await model.ainvoke("ping", config={"callbacks": [recorder]})
    assert reply.content == "echo: ping"
    assert server.modes == ["hang", "ok"]
    usage = recorder.snapshot()["unknown"]
    assert (usage.calls, usage.errors, usage.output_tokens) == (1, 0, 3)  # counted once


def test_connection_dropped_without_an_answer_is_retried() -> None:
    with flaky_server(["drop", "drop"]) as server:
        reply = _model(server.url).invoke("ping")
    assert reply.content == "echo: ping"
    assert server.modes == ["drop", "drop", "ok"]


def test_server_down_past_the_limit_names_backend_and_attempts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    policy = RetryPolicy(retry_for_s=1.5, backoff_s=0.2, max_backoff_s=0.4)
    model = _model(url, retry_policy=policy)
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="sipdo.models"),
        pytest.raises(ModelBackendDownError) as caught,
    ):
        model.invoke("ping")
    elapsed = time.monotonic() - started
    error = caught.value
    assert error.backend == f"m at {url}"
    assert "cannot connect" in str(error)
    assert "retry limit 1.5 s" in str(error)
    assert error.attempts >= 4  # 0.2, 0.4, 0.4, ... inside 1.5 s
    assert 1.4 <= error.waited_s <= 1.5 + 0.1
    assert elapsed < 5
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == error.attempts - 1  # one warning per wait, none for the last


def test_server_restarted_on_the_same_port_is_picked_up() -> None:
    port = _free_port()
    model = _model(
        f"http://127.0.0.1:{port}/v1",
        retry_policy=RetryPolicy(retry_for_s=30, backoff_s=0.2, max_backoff_s=0.5),
    )
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["reply"] = model.invoke("ping")
        except Exception as exc:
            box["error"] = exc

    caller = threading.Thread(target=call)
    caller.start()  # the server is down when the call starts
    time.sleep(1.5)
    with flaky_server([], port=port) as server:
        caller.join(timeout=20)
    assert "error" not in box, box.get("error")
    assert box["reply"].content == "echo: ping"
    assert server.modes == ["ok"]  # the attempts made while it was down never arrived


def test_bad_key_is_not_retried() -> None:
    with flaky_server(["401", "401"]) as server, pytest.raises(ModelUnavailableError) as caught:
        _model(server.url).invoke("ping")
    assert not isinstance(caught.value, ModelBackendDownError)
    assert server.modes == ["401"]


def test_per_role_timeout_reaches_the_client() -> None:
    policy = RetryPolicy(retry_for_s=10)
    model = resolve_model("openai:m@http://127.0.0.1:9/v1", role="checker", timeout_s=42.0,
                          retry=policy)  # fmt: skip
    assert isinstance(model, SipdoChatOpenAI)
    assert model.request_timeout == 42.0
    assert model.retry_policy is policy
    assert model.root_client.max_retries == 0  # the client's own retries are off
    assert model.root_async_client.max_retries == 0
