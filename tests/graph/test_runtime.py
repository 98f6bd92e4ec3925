"""The lazy sandbox provider and the sync bridge of the nodes."""

from __future__ import annotations

import asyncio
import gc

from sipdo.graph.runtime import LazySandbox
from sipdo.sandbox import Sandbox


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
