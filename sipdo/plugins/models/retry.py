"""``RetryPolicy``: how long a call to a model server that is down, hung or rate-limited waits.

Only faults that go away by themselves are retried: the connection refused or
reset (the server was killed or is restarting), no answer within the call's
timeout (a hung server), and HTTP 408, 409, 429 and 5xx answers. The wait before
attempt ``n + 1`` is ``backoff_s * 2**(n - 1)`` capped at ``max_backoff_s`` (with
up to 25% random slack so concurrent callers do not return in lockstep); a
``Retry-After`` / ``retry-after-ms`` header replaces it. Retrying stops when the
next attempt would start more than ``retry_for_s`` after the call's first
failure (or after ``max_attempts``); a ``Retry-After`` that points past that
limit stops it at once. Everything else (a bad key, an unknown model, a 400)
is not retried.

The decision is the pure function ``next_wait``; the model classes sleep.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

import openai

from sipdo.errors import ConfigurationError

RETRIED_STATUS = frozenset({408, 409, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """Retry limits for one model (a role may get its own)."""

    retry_for_s: float = 300.0
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if not (self.retry_for_s >= 0 and self.backoff_s > 0 and self.max_backoff_s > 0):
            raise ConfigurationError(
                "retry limits must be positive: "
                f"retry_for_s={self.retry_for_s}, backoff_s={self.backoff_s}, "
                f"max_backoff_s={self.max_backoff_s}"
            )
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be at least 1, got {self.max_attempts}")


@dataclass
class RetryClock:
    """The retry state of one call: attempts made and when the first one failed."""

    attempts: int = 0
    first_failure: float | None = None
    last_error: str = ""


def transient(exc: BaseException) -> bool:
    """True for faults a later attempt can get past (server down, hung, busy)."""
    if isinstance(exc, openai.APIConnectionError):  # refused, reset, or timed out
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRIED_STATUS or exc.status_code >= 500
    return False


def retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds a response asks the client to wait (``retry-after-ms``, ``retry-after`` as
    seconds or as an HTTP date), or None."""
    if not headers:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def headers_of(exc: BaseException) -> Mapping[str, str] | None:
    """The HTTP response headers carried by an openai status error, if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return headers if isinstance(headers, Mapping) else None


def next_wait(
    policy: RetryPolicy,
    clock: RetryClock,
    now: float,
    asked: float | None,
    jitter: float | None = None,
) -> float | None:
    """Seconds to wait before the next attempt, or None to give up.

    ``clock`` already counts the attempt that just failed (``first_failure`` set);
    ``asked`` is the server's Retry-After; ``jitter`` in [0, 1) (random when None).
    """
    if policy.max_attempts is not None and clock.attempts >= policy.max_attempts:
        return None
    first = clock.first_failure if clock.first_failure is not None else now
    left = policy.retry_for_s - (now - first)
    if asked is not None:
        return asked if asked <= left else None
    base = min(policy.max_backoff_s, policy.backoff_s * 2.0 ** max(0, clock.attempts - 1))
    wait = base * (1 + 0.25 * (random.random() if jitter is None else jitter))
    if left <= 0:
        return None
    return min(wait, left)
