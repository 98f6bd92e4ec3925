"""Sandbox runs as data: the I/O-free flows yield ``RunRequest`` batches, drivers execute them.

A *flow* is a generator: it yields a list of ``RunRequest`` and receives the
list of ``ExecResult`` in the same order, until it returns its value. ``drive``
runs a flow with ``Sandbox.run`` (one request after another), ``adrive`` with
``Sandbox.arun`` (the requests of one batch concurrently). Neither contains
verification logic; all of it lives in the flows.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sipdo.errors import VerificationError
from sipdo.sandbox.base import ExecResult, Sandbox

T = TypeVar("T")


@dataclass(frozen=True)
class RunRequest:
    """One sandbox run: files (text, or bytes for binary ones), ``python <script>``, a JSON
    request on stdin, limits."""

    files: Mapping[str, str | bytes]
    script: str
    request: dict[str, Any]
    timeout_s: float
    output_bytes: int = 16_000_000
    nonce: str = field(default_factory=lambda: secrets.token_hex(16))

    def stdin(self) -> str:
        return json.dumps({**self.request, "nonce": self.nonce}, separators=(",", ":"))


Flow = Generator[list[RunRequest], list[ExecResult], T]


@dataclass(frozen=True)
class RunOutput:
    """The records a driver wrote on its private channel, plus how the run ended."""

    records: list[dict[str, Any]]
    result: ExecResult

    @property
    def done(self) -> bool:
        return any(r.get("done") is True for r in self.records)

    def ending(self) -> str:
        """Why the run stopped, for feedback."""
        res = self.result
        if res.timed_out:
            return f"timed out after {res.duration_s:.1f}s"
        if res.oom_killed:
            return "ran out of memory"
        tail = res.stderr.strip().splitlines()[-1:] or [""]
        return f"exited with code {res.exit_code} {tail[0][:200]}".strip()


def parse(req: RunRequest, result: ExecResult) -> RunOutput:
    """Records framed with this request's nonce; other output is ignored."""
    prefix = "\x1e" + req.nonce + " "
    records: list[dict[str, Any]] = []
    for line in result.stdout.split("\n"):
        if line.startswith(prefix):
            try:
                record = json.loads(line[len(prefix) :])
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return RunOutput(records, result)


def _limits(sandbox: Sandbox, req: RunRequest) -> Any:
    return sandbox.limits.replace(timeout_s=req.timeout_s, output_bytes=req.output_bytes)


def drive(flow: Flow[T], sandbox: Sandbox) -> T:
    """Run ``flow`` to completion with blocking sandbox runs."""
    try:
        batch = next(flow)
        while True:
            results = [
                sandbox.run(
                    r.files, ["python", r.script], stdin=r.stdin(), limits=_limits(sandbox, r)
                )
                for r in batch
            ]
            batch = flow.send(results)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def adrive(flow: Flow[T], sandbox: Sandbox) -> T:
    """Run ``flow`` to completion; the runs of one batch overlap.

    The flow's own steps (building requests: harness bytecode, Hypothesis's Unicode
    tables made once by a subprocess; reading results) run in a worker thread, so an
    event loop that serves other work (LangGraph Server refuses blocking calls on
    it) is never held up by them.
    """
    done, batch = await asyncio.to_thread(_advance, flow, None)
    while not done:
        results = await asyncio.gather(
            *(
                sandbox.arun(
                    r.files, ["python", r.script], stdin=r.stdin(), limits=_limits(sandbox, r)
                )
                for r in batch
            )
        )
        done, batch = await asyncio.to_thread(_advance, flow, list(results))
    return batch  # type: ignore[no-any-return]


def _advance(flow: Flow[T], results: list[Any] | None) -> tuple[bool, Any]:
    """One step of ``flow``: (finished, its value) or (not finished, the next batch).
    (A ``StopIteration`` cannot cross a thread's future, hence the pair.)"""
    try:
        return False, (next(flow) if results is None else flow.send(results))
    except StopIteration as stop:
        return True, stop.value


def require_done(out: RunOutput, what: str) -> None:
    """A trusted run must finish; otherwise the harness (not a candidate) failed."""
    if not out.done:
        raise VerificationError(
            f"{what} did not finish: {out.ending()}\n{out.result.stderr[-1500:]}"
        )
