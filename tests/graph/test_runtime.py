"""The lazy sandbox provider and the sync bridge of the nodes."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from sipdo.graph.runtime import LazySandbox
from sipdo.sandbox import Sandbox
from sipdo.sandbox.base import ExecResult, Job


async def test_given_sandbox_is_used_as_is(sandbox: Sandbox) -> None:
    provider = LazySandbox(sandbox)
    assert await provider.get() is sandbox
    provider.close()  # not ours: stays open
    result = await sandbox.arun({}, ["python", "-c", "print(6 * 7)"])
    assert result.stdout.strip() == "42"


async def test_auto_sandbox_opens_once_on_first_use_and_closes() -> None:
    provider = LazySandbox(None)
    assert provider._opened is None  # nothing started before it is needed
    first, second = await asyncio.gather(provider.get(), provider.get())
    assert first is second
    result = await first.arun({"m.py": "print('ok')"}, ["python", "m.py"])
    assert result.ok
    assert result.stdout.strip() == "ok"
    provider.close()
    assert provider._opened is None
    reopened = await provider.get()
    assert reopened is not first
    finalizer = provider._finalizer
    assert finalizer is not None
    assert finalizer.alive
    del provider
    gc.collect()
    assert not finalizer.alive  # the graph going away closes what it opened


async def test_sync_invoke_inside_a_running_event_loop() -> None:
    """``graph.invoke`` from code that already runs an event loop (e.g. a notebook)."""
    from sipdo.graph import Budget, create_sipdo_graph
    from sipdo.testing import ScriptedChatModel

    generator = ScriptedChatModel(["not json", "{still not", "[]"])
    g = create_sipdo_graph(
        ScriptedChatModel([]),
        generator_model=generator,
        budget=Budget(iterations=1, tasks_per_iteration=1),
    )
    asyncio.get_running_loop()  # we are inside a loop; nodes run on a helper thread
    out = g.invoke({"prompt": "p", "seed_tasks": []})
    assert out["stop_reason"] == "iterations"
    [rejected] = out["rejected_tasks"]
    assert rejected["reason"].startswith("generator output unusable")
    assert len(generator.calls) == 3


class SlowEngine(Sandbox):
    """One run at a time, each reporting exactly 0.25 s of its own (it sleeps 0.05 s)."""

    def __init__(self) -> None:
        super().__init__(max_concurrency=1)
        self.kind = "process"

    def _execute(self, job: Job) -> ExecResult:
        time.sleep(0.05)
        return ExecResult(0, "", "", duration_s=0.25)


async def test_sandbox_seconds_count_the_runs_not_the_wait_for_a_slot() -> None:
    """Eight verifications at once on a one-slot sandbox: the runs' own durations are
    summed (8 x 0.25 s); the wall time each verification spent queued is not
    (counting it would add 0.05 + 0.10 + ... + 0.40 s of waiting)."""
    from sipdo.graph.infra import patiently, sandbox_retry_policy
    from sipdo.graph.runtime import Tally
    from sipdo.verifiers.watch import WatchedSandbox

    watched = WatchedSandbox(SlowEngine())
    tally = Tally()

    async def verify() -> dict[str, bool]:
        result = await watched.arun({}, ["true"])
        return {"passed": result.ok}

    verdicts = await asyncio.gather(
        *(patiently(verify, sandbox_retry_policy(), spent=tally.add_sandbox) for _ in range(8))
    )
    assert all(v["passed"] for v in verdicts)
    assert tally.sandbox_seconds == pytest.approx(8 * 0.25)
