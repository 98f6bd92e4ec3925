"""``adrive`` steps a verification flow off the event loop (LangGraph Server refuses
blocking calls on it) and still returns the flow's value."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator
from typing import Any

import pytest

from sipdo.verifiers.runs import adrive


def test_flow_steps_run_off_the_loop_thread_and_the_value_comes_back() -> None:
    seen: list[int] = []

    def flow() -> Generator[list[Any], list[Any], str]:
        seen.append(threading.get_ident())
        results = yield []  # a batch of no runs: nothing reaches the sandbox
        seen.append(threading.get_ident())
        assert results == []
        return "verdict"

    async def main() -> tuple[str, int]:
        value = await adrive(flow(), sandbox=None)  # type: ignore[arg-type]
        return value, threading.get_ident()

    value, loop_thread = asyncio.run(main())
    assert value == "verdict"
    assert len(seen) == 2
    assert loop_thread not in seen


def test_an_error_inside_the_flow_reaches_the_caller() -> None:
    def flow() -> Generator[list[Any], list[Any], str]:
        yield []
        raise ValueError("the harness failed")

    async def main() -> str:
        return await adrive(flow(), sandbox=None)  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="harness failed"):
        asyncio.run(main())
