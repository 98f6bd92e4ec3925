"""A sandbox wrapper that notices infrastructure trouble, so it is not blamed on the code.

When an engine dies or restarts under a run (``dockerd`` restarted, a
container killed from outside), the run either raises ``SandboxError`` or,
worse, comes back as an ordinary-looking failure: a signal exit code and no
output, which a verifier would grade as wrong code. ``WatchedSandbox``
delegates every run to the real sandbox (through its public ``run``) and
records, for the dataset row that asked (a context variable, which
``asyncio.to_thread`` carries into the worker thread), every run that raised
or ended abnormally. The dataset layer re-verifies a negative verdict whose
row saw such a run, so a disrupted run is retried while a hostile candidate,
which fails the same way twice, keeps its verdict.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sipdo.errors import SandboxError
from sipdo.sandbox.base import ExecResult, Job, Sandbox

# Exit codes of a process ended by a signal (128 + n) or of a run whose agent
# or command could not start (125-127): what a killed container looks like.
_ABNORMAL_FROM = 125


@dataclass
class RunLog:
    """What the runs of one row looked like."""

    runs: int = 0
    abnormal: int = 0
    errors: list[str] = field(default_factory=list)
    # The runs' own time in the sandbox (``ExecResult.duration_s``), not the wall time
    # of the verification: waiting for a free slot is not sandbox time.
    seconds: float = 0.0

    @property
    def suspicious(self) -> bool:
        return bool(self.abnormal or self.errors)


_current: contextvars.ContextVar[RunLog | None] = contextvars.ContextVar(
    "sipdo_run_log", default=None
)


@contextmanager
def watching(log: RunLog) -> Iterator[RunLog]:
    """Attribute the runs of the current task (and the threads it starts) to ``log``."""
    token = _current.set(log)
    try:
        yield log
    finally:
        _current.reset(token)


def abnormal(result: ExecResult) -> bool:
    """Ended by a signal or without starting, and not by our own timeout."""
    return not result.timed_out and (result.exit_code < 0 or result.exit_code >= _ABNORMAL_FROM)


class WatchedSandbox(Sandbox):
    """Runs everything in ``inner``; logs infrastructure-looking outcomes per row.

    Closing it leaves ``inner`` open: whoever opened the inner sandbox closes it.
    """

    def __init__(self, inner: Sandbox) -> None:
        super().__init__(limits=inner.limits, max_concurrency=inner.max_concurrency)
        self.inner = inner
        self.kind = inner.kind
        self.isolation = inner.isolation
        self.incidents = 0
        self._lock = threading.Lock()

    def runtime_id(self) -> str | None:
        return self.inner.runtime_id()

    def _execute(self, job: Job) -> ExecResult:
        log = _current.get()
        try:
            result = self.inner.run(job.files, job.command, stdin=job.stdin, limits=job.limits)
        except SandboxError as exc:
            with self._lock:
                self.incidents += 1
                if log is not None:
                    log.runs += 1
                    log.errors.append(f"{type(exc).__name__}: {exc}")
            raise
        if log is not None:
            with self._lock:
                log.runs += 1
                log.abnormal += abnormal(result)
                log.seconds += result.duration_s
        return result
