"""Sandbox contracts: ``Limits``, ``ExecResult``, ``Sandbox`` and input checks.

Backends implement one method, ``_execute(job)``; ``run`` / ``arun`` validate
the input once (free of I/O) and hand a ``Job`` to it. ``arun`` runs jobs in
worker threads, bounded by ``max_concurrency``, so N awaited runs overlap.
"""

from __future__ import annotations

import asyncio
import posixpath
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Self

from sipdo.errors import SandboxError, SandboxInputError

ISOLATION_VOCABULARY: frozenset[str] = frozenset(
    {
        "network",
        "host_files_read",
        "host_files_write",
        "env",
        "processes",
        "memory",
        "cpu_time",
        "wall_time",
        "output",
        "privileges",
        "run_isolation",
    }
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits for one run. The defaults are safe: network off, all limits on."""

    timeout_s: float = 10.0
    memory_mb: int = 512
    cpus: float = 1.0
    pids: int = 64
    output_bytes: int = 1_000_000
    disk_mb: int = 64
    network: bool = False

    def __post_init__(self) -> None:
        for name in ("timeout_s", "memory_mb", "cpus", "pids", "output_bytes", "disk_mb"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise SandboxInputError(f"Limits.{name} must be a positive number, got {value!r}")

    def replace(self, **changes: object) -> Limits:
        """Return a copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ExecResult:
    """What one run produced. A failing program is data here, never an exception."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    oom_killed: bool = False
    output_truncated: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Exited 0 without being killed for time or memory."""
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed


@dataclass(frozen=True, slots=True)
class Job:
    """A validated run request: safe relative file names, non-empty command, bytes."""

    files: Mapping[str, bytes]
    command: tuple[str, ...]
    stdin: bytes | None
    limits: Limits
    directories: frozenset[str] = field(default_factory=frozenset)


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise SandboxInputError(f"file name must be str, got {type(name).__name__}")
    if not name or "\x00" in name or "\\" in name:
        raise SandboxInputError(f"unsafe file name {name!r}: empty, NUL or backslash")
    if name.startswith("/"):
        raise SandboxInputError(f"unsafe file name {name!r}: absolute paths are not allowed")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise SandboxInputError(f"unsafe file name {name!r}: '..', '.' or empty components")
    if posixpath.normpath(name) != name:
        raise SandboxInputError(f"unsafe file name {name!r}: not normalized")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SandboxInputError(f"file name {name!r} is not valid UTF-8") from exc
    return name


def _to_bytes(what: str, value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise SandboxInputError(f"{what} is not valid UTF-8 text: {exc}") from exc
    raise SandboxInputError(f"{what} must be str or bytes, got {type(value).__name__}")


def prepare_job(
    files: Mapping[str, str | bytes],
    command: Sequence[str],
    stdin: str | bytes | None,
    limits: Limits,
) -> Job:
    """Validate a run request; raise ``SandboxInputError`` on anything unsafe."""
    if isinstance(command, str | bytes):
        raise SandboxInputError("command must be a sequence of arguments, not a string")
    command = tuple(command)
    if not command:
        raise SandboxInputError("command is empty")
    for arg in command:
        if not isinstance(arg, str) or "\x00" in arg:
            raise SandboxInputError(f"command argument {arg!r} must be str without NUL")
        _to_bytes("command argument", arg)
    checked: dict[str, bytes] = {}
    directories: set[str] = set()
    for name, content in files.items():
        checked[_check_name(name)] = _to_bytes(f"content of {name!r}", content)
        parent = posixpath.dirname(name)
        while parent:
            directories.add(parent)
            parent = posixpath.dirname(parent)
    clash = directories & checked.keys()
    if clash:
        raise SandboxInputError(f"{sorted(clash)[0]!r} is used both as a file and a directory")
    data = None if stdin is None else _to_bytes("stdin", stdin)
    return Job(checked, command, data, limits, frozenset(directories))


class Sandbox(ABC):
    """Runs untrusted commands on given files, in a fresh working directory per run.

    ``command[0] == "python"`` means the sandbox's own Python interpreter.
    ``isolation`` lists what the backend enforces (see ``ISOLATION_VOCABULARY``);
    each claim is attacked by the conformance tests.
    """

    kind: str = "abstract"
    isolation: frozenset[str] = frozenset()

    def __init__(self, *, limits: Limits | None = None, max_concurrency: int = 2) -> None:
        self.limits = limits or Limits()
        self.max_concurrency = max(1, max_concurrency)
        self._closed = False
        # One semaphore per event loop: asyncio primitives bind to the loop that uses them.
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._gate_lock = threading.Lock()

    # -- the one method a backend implements ---------------------------------
    @abstractmethod
    def _execute(self, job: Job) -> ExecResult:
        """Run a validated job. Must be thread-safe; must not raise for program failures."""

    def _release(self) -> None:  # noqa: B027 - optional hook
        """Free backend resources; called once by ``close``."""

    def runtime_id(self) -> str | None:
        """What a program's behaviour here depends on besides its files: the interpreter
        and its libraries (e.g. an image's id). ``None``, the default, means unknown: then
        no result of a run here is kept for another process to reuse."""
        return None

    # -- derived API ----------------------------------------------------------
    def run(
        self,
        files: Mapping[str, str | bytes],
        command: Sequence[str],
        *,
        stdin: str | bytes | None = None,
        limits: Limits | None = None,
    ) -> ExecResult:
        """Write ``files`` into a fresh working directory and run ``command`` there."""
        if self._closed:
            raise SandboxError(f"{type(self).__name__} is closed")
        return self._execute(prepare_job(files, command, stdin, limits or self.limits))

    async def arun(
        self,
        files: Mapping[str, str | bytes],
        command: Sequence[str],
        *,
        stdin: str | bytes | None = None,
        limits: Limits | None = None,
    ) -> ExecResult:
        """Async twin of ``run``; concurrent calls overlap up to ``max_concurrency``."""
        if self._closed:
            raise SandboxError(f"{type(self).__name__} is closed")
        job = prepare_job(files, command, stdin, limits or self.limits)
        async with self._gate():
            return await asyncio.to_thread(self._execute, job)

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        with self._gate_lock:
            gate = self._gates.get(loop)
            if gate is None:
                gate = self._gates[loop] = asyncio.Semaphore(self.max_concurrency)
            return gate

    def close(self) -> None:
        """Release everything the sandbox holds; idempotent."""
        if not self._closed:
            self._closed = True
            self._release()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
