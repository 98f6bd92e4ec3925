"""``RetryPolicy``: how long a call waits out a fault that goes away by itself.

Used for model servers (down, hung, rate-limited: ``SipdoChatOpenAI``) and for
the run store's database (restarting, locked: ``RunStore``); which faults count
as passing is theirs to say. The wait before attempt ``n + 1`` is
``backoff_s * 2**(n - 1)`` capped at ``max_backoff_s``, with up to 25% random
slack so concurrent callers do not come back in lockstep; a server's
``Retry-After`` replaces it. Retrying stops when the next attempt would start
more than ``retry_for_s`` after the call's first failure (or after
``max_attempts``); a ``Retry-After`` pointing past that stops it at once.

The decision is the pure function ``next_wait``; callers do the sleeping.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sipdo.errors import ConfigurationError


@dataclass(frozen=True)
class RetryPolicy:
    """Retry limits (for a model: each role may have its own)."""

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
