"""``RetryPolicy`` decisions as a table: backoff, caps, the retry window, Retry-After."""

from __future__ import annotations

import email.utils

import httpx
import openai
import pytest

from sipdo.errors import ConfigurationError
from sipdo.plugins.models.openai_compat import transient
from sipdo.retry import RetryClock, RetryPolicy, next_wait, retry_after


def _clock(attempts: int, first: float = 100.0) -> RetryClock:
    return RetryClock(attempts=attempts, first_failure=first)


@pytest.mark.parametrize(
    ("attempts", "now", "expected"),
    [
        (1, 100.0, 1.0),  # first retry: backoff_s
        (2, 101.0, 2.0),  # doubling
        (3, 103.0, 4.0),
        (7, 150.0, 30.0),  # capped at max_backoff_s
        (9, 399.0, 1.0),  # never past the window: only what is left of it
        (9, 400.0, None),  # the window is spent
        (9, 460.0, None),
    ],
)
def test_backoff_doubles_is_capped_and_stays_inside_the_window(
    attempts: int, now: float, expected: float | None
) -> None:
    policy = RetryPolicy(retry_for_s=300, backoff_s=1, max_backoff_s=30)
    assert next_wait(policy, _clock(attempts), now, None, jitter=0.0) == expected


def test_jitter_adds_at_most_a_quarter() -> None:
    policy = RetryPolicy(backoff_s=4)
    assert next_wait(policy, _clock(1), 100.0, None, jitter=0.999) == pytest.approx(4.999, 1e-3)


@pytest.mark.parametrize(
    ("asked", "now", "expected"),
    [
        (5.0, 100.0, 5.0),  # the server's wait replaces the backoff
        (0.0, 100.0, 0.0),
        (250.0, 100.0, 250.0),  # inside the window
        (250.0, 160.0, None),  # would end past the window: give up now, not later
    ],
)
def test_retry_after_is_obeyed_inside_the_window(
    asked: float, now: float, expected: float | None
) -> None:
    policy = RetryPolicy(retry_for_s=300)
    assert next_wait(policy, _clock(1), now, asked, jitter=0.0) == expected


def test_max_attempts_stops_before_the_window() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert next_wait(policy, _clock(2), 100.0, None, jitter=0.0) == 2.0
    assert next_wait(policy, _clock(3), 100.0, None, jitter=0.0) is None


def test_zero_window_never_retries() -> None:
    assert next_wait(RetryPolicy(retry_for_s=0), _clock(1), 100.0, None) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "100", "retry-after": "9"}, 0.1),  # ms first, as openai reads it
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_headers(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after(headers) == expected


def test_retry_after_as_an_http_date() -> None:
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert retry_after({"retry-after": date}, now=1_000_000.0) == pytest.approx(30.0)
    assert retry_after({"retry-after": date}, now=1_000_100.0) == 0.0  # already past


def _status(code: int) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://x/v1/chat/completions")
    return openai.APIStatusError("e", response=httpx.Response(code, request=request), body=None)


@pytest.mark.parametrize(
    ("code", "retried"),
    [(408, True), (409, True), (429, True), (500, True), (503, True), (400, False),
     (401, False), (403, False), (404, False), (422, False)],
)  # fmt: skip
def test_which_statuses_are_transient(code: int, retried: bool) -> None:
    assert transient(_status(code)) is retried


def test_connection_faults_are_transient_other_errors_not() -> None:
    request = httpx.Request("POST", "http://x/v1/chat/completions")
    assert transient(openai.APIConnectionError(request=request))
    assert transient(openai.APITimeoutError(request=request))
    assert not transient(ValueError("bad json"))


@pytest.mark.parametrize(
    "kwargs",
    [{"retry_for_s": -1}, {"backoff_s": 0}, {"max_backoff_s": -2}, {"max_attempts": 0}],
)
def test_bad_limits_are_configuration_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
