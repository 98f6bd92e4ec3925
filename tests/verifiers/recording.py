"""A sandbox that passes every run (``run``, ``arun``) to another one and keeps each run's
script and request."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sipdo.sandbox import Limits, Sandbox
from sipdo.sandbox.base import ExecResult

INHERIT = "inherit"


class Recording(Sandbox):
    """Passes runs to ``inner``, keeping each run's script and request. A new object, so a
    new per-sandbox memory cache; its ``runtime_id`` is ``inner``'s unless given."""

    def __init__(self, inner: Sandbox, runtime: str | None = INHERIT) -> None:
        super().__init__(limits=inner.limits)
        self.inner = inner
        self.runtime = runtime
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def runtime_id(self) -> str | None:
        return self.inner.runtime_id() if self.runtime == INHERIT else self.runtime

    def run(
        self,
        files: Mapping[str, str | bytes],
        command: Sequence[str],
        *,
        stdin: str | bytes | None = None,
        limits: Limits | None = None,
    ) -> ExecResult:
        self.requests.append((command[-1], json.loads(stdin or "{}")))
        return self.inner.run(files, command, stdin=stdin, limits=limits)

    async def arun(
        self,
        files: Mapping[str, str | bytes],
        command: Sequence[str],
        *,
        stdin: str | bytes | None = None,
        limits: Limits | None = None,
    ) -> ExecResult:
        self.requests.append((command[-1], json.loads(stdin or "{}")))
        return await self.inner.arun(files, command, stdin=stdin, limits=limits)

    def _execute(self, job: Any) -> ExecResult:
        raise NotImplementedError

    @property
    def scripts(self) -> list[str]:
        return [script for script, _ in self.requests]

    @property
    def reference_runs(self) -> int:
        return self.scripts.count("_sipdo_reference.py")
