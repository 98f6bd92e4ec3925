"""Sandbox engine trouble during a run: waited out and verified again, never graded.

When the engine under the sandbox dies or restarts mid-run (``dockerd``
restarted, a container killed from outside), a verification either raises
``SandboxError`` or comes back looking like wrong code: a run killed by a
signal, with no output. Neither may be recorded as the candidate's failure or
a task's rejection. ``patiently`` runs a verification with its sandbox runs
watched (``sipdo.verifiers.watch``): a negative verdict that saw an abnormal run
is verified once more and that verdict counts (hostile code fails the same way
twice); a ``SandboxError`` is retried with backoff for ``SIPDO_SANDBOX_RETRY_S``
seconds (default 120) from its first failure, while the engine comes back and
the warm pool refills. Past that, ``SandboxUnavailableError`` stops the run
(resumable: ``sipdo run`` exits 75 with the resume command). The held-out
grading (``sipdo.graph.holdout``) grades each sample the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sipdo.errors import ConfigurationError, SandboxError, SandboxUnavailableError
from sipdo.retry import RetryClock, RetryPolicy, next_wait
from sipdo.sandbox import Sandbox
from sipdo.verifiers.grading import SandboxProvider
from sipdo.verifiers.watch import RunLog, WatchedSandbox, watching

log = logging.getLogger("sipdo.sandbox")

RETRY_ENV = "SIPDO_SANDBOX_RETRY_S"

V = TypeVar("V")


def sandbox_retry_policy() -> RetryPolicy:
    """120 s of retries with backoff up to 10 s, or ``SIPDO_SANDBOX_RETRY_S`` seconds."""
    raw = os.environ.get(RETRY_ENV, "").strip()
    try:
        seconds = float(raw) if raw else 120.0
    except ValueError as exc:
        raise ConfigurationError(f"{RETRY_ENV} must be a number of seconds, got {raw!r}") from exc
    if not seconds >= 0:
        raise ConfigurationError(f"{RETRY_ENV} must not be negative, got {raw!r}")
    return RetryPolicy(retry_for_s=seconds, backoff_s=1.0, max_backoff_s=10.0)


class WatchedProvider(SandboxProvider):
    """``provider``'s sandbox behind one ``WatchedSandbox`` (rebuilt if the sandbox changes)."""

    def __init__(self, provider: SandboxProvider) -> None:
        self.provider = provider
        self._watched: WatchedSandbox | None = None

    async def get(self) -> Sandbox:
        inner = await self.provider.get()
        if self._watched is None or self._watched.inner is not inner:
            self._watched = WatchedSandbox(inner)
        return self._watched


def _verdict_passed(verdict: Any) -> bool:
    return bool(verdict.get("passed"))


async def patiently(
    verify: Callable[[], Awaitable[V]],
    policy: RetryPolicy,
    passed: Callable[[V], bool] = _verdict_passed,
    spent: Callable[[float], None] | None = None,
) -> V:
    """``verify()``'s verdict, with engine trouble waited out (see the module docstring).

    ``passed`` tells a positive verdict (kept at once) from a negative one (verified
    again if a sandbox run under it ended abnormally); by default a verdict dict's
    ``passed``. ``spent`` is told the seconds each attempt's sandbox runs took
    (their own durations, summed: concurrent verifications waiting for a slot do
    not count their wait).
    """
    clock = RetryClock()
    confirming = False
    while True:
        with watching(RunLog()) as runs:
            try:
                verdict: V | None = await verify()
                error: SandboxError | None = None
            except SandboxError as exc:
                verdict, error = None, exc
            finally:
                if spent is not None:
                    spent(runs.seconds)
        if verdict is not None and (passed(verdict) or confirming or not runs.suspicious):
            return verdict
        confirming = verdict is not None
        now = time.monotonic()
        clock.attempts += 1
        clock.first_failure = clock.first_failure if clock.first_failure is not None else now
        what = f"{type(error).__name__}: {error}" if error else "a sandbox run ended abnormally"
        wait = next_wait(policy, clock, now, None)
        if wait is None:
            raise SandboxUnavailableError(
                f"sandbox engine still failing ({what}); gave up after {clock.attempts} "
                f"attempt(s) over {now - clock.first_failure:.0f} s "
                f"(retry limit {policy.retry_for_s:g} s, {RETRY_ENV})"
            ) from error
        log.warning("sandbox: %s; verifying again in %.1f s", what, wait)
        await asyncio.sleep(wait)
