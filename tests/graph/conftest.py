"""Graph test fixtures: a real ProcessSandbox shared by the module, a recording run store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sipdo.sandbox import ProcessSandbox, Sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """A real process sandbox (the graph tests grade real code with the real verifiers)."""
    with ProcessSandbox() as box:
        yield box


class RecordingRunStore:
    """Records the calls the graph makes on our own ``RunStore`` interface."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def _rec(self, method: str, run_id: str, **kw: Any) -> None:
        self.calls.append((method, run_id, kw))

    def of(self, method: str) -> list[dict[str, Any]]:
        return [kw for m, _, kw in self.calls if m == method]

    def create_run(self, run_id: str, config: dict[str, Any], initial_prompt: str) -> None:
        self._rec("create_run", run_id, config=config, initial_prompt=initial_prompt)

    def record_prompt_version(self, run_id: str, **kw: Any) -> None:
        self._rec("record_prompt_version", run_id, **kw)

    def record_task(self, run_id: str, **kw: Any) -> None:
        self._rec("record_task", run_id, **kw)

    def record_attempt(self, run_id: str, **kw: Any) -> None:
        self._rec("record_attempt", run_id, **kw)

    def record_usage(self, run_id: str, **kw: Any) -> None:
        self._rec("record_usage", run_id, **kw)

    def finish_run(self, run_id: str, **kw: Any) -> None:
        self._rec("finish_run", run_id, **kw)


@pytest.fixture
def recording_store() -> RecordingRunStore:
    return RecordingRunStore()
