"""The host side of the Docker fork server (``_dockerserver``): boot line, framing, one run.

A server container is created with ``SERVER_HEADROOM_MB`` over the run's
memory limit so that preloading cannot fail; once the server says it is
ready, the limit is lowered to the run's ``memory_mb`` plus the server's own
*anonymous* memory (``memory.stat``; the page cache, which the kernel takes
back under pressure, must not be counted or the run would get it on top).
"""

from __future__ import annotations

import json
import select
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sipdo.errors import SandboxError
from sipdo.sandbox import _dockerserver, _zygote
from sipdo.sandbox._capture import CappedBuffer
from sipdo.sandbox.base import Job

SERVER_HEADROOM_MB = 256
MARGIN_MB = 8
READY_TIMEOUT_S = 120.0
BACKSTOP_S = 10.0  # past the run's deadline, the host stops waiting for the server
MAX_RUNS = 200  # a container is replaced after this many runs


def server_command() -> list[str]:
    """``python3 -c`` of the two stdlib-only modules, loaded as modules of their own."""
    sources = []
    for module in (_zygote, _dockerserver):
        path = module.__file__
        if path is None:
            raise SandboxError("the fork server's source cannot be found")
        with open(path, encoding="utf-8") as handle:
            sources.append(handle.read())
    boot = (
        "import sys, types\n"
        "del sys.path[0]\n"
        "def _load(name, source):\n"
        "    module = types.ModuleType(name)\n"
        "    module.__file__ = '<' + name + '>'\n"
        "    sys.modules[name] = module\n"
        "    exec(compile(source, module.__file__, 'exec'), module.__dict__)\n"
        "    return module\n"
        f"_load('_sipdo_zygote', {sources[0]!r})\n"
        f"_load('_sipdo_server', {sources[1]!r}).serve()\n"
    )
    return ["python3", "-c", boot]


class ServerLost(SandboxError):
    """The server's stream ended: the container died (killed by its run, or the engine went)."""


class ServerStream:
    """Messages from a server container's attached stream (engine frames, then ours)."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.raw = bytearray()  # engine-multiplexed bytes not parsed yet
        self.out = bytearray()  # the server's stdout, not yet split into messages
        self.diagnostics = bytearray()  # the server's own stderr (its crash, if any)

    def next(self, deadline: float) -> tuple[bytes, bytes] | None:
        """The next message ``(kind, payload)``, or None when ``deadline`` passes."""
        while True:
            message = self._message()
            if message is not None:
                return message
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return None
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                tail = self.diagnostics[-500:].decode("utf-8", "replace")
                raise ServerLost(f"the sandbox server's stream ended {tail}".strip())
            self.raw += data
            self._demux()

    def _demux(self) -> None:
        while len(self.raw) >= 8:
            kind, size = struct.unpack(">BxxxL", self.raw[:8])
            if len(self.raw) < 8 + size:
                return
            payload = self.raw[8 : 8 + size]
            del self.raw[: 8 + size]
            if kind == 1:
                self.out += payload
            else:
                self.diagnostics += payload
                del self.diagnostics[:-4096]

    def _message(self) -> tuple[bytes, bytes] | None:
        if len(self.out) < 5:
            return None
        size = struct.unpack(">I", self.out[1:5])[0]
        if len(self.out) < 5 + size:
            return None
        kind, payload = bytes(self.out[:1]), bytes(self.out[5 : 5 + size])
        del self.out[: 5 + size]
        return kind, payload


@dataclass
class RunEnd:
    exit_code: int
    timed_out: bool
    oom_killed: bool
    truncated: bool
    tainted: bool


def wait_ready(stream: ServerStream) -> dict[str, Any]:
    """Wait for the server's ``R``; return what it reported."""
    message = stream.next(time.monotonic() + READY_TIMEOUT_S)
    if message is None or message[0] != b"R":
        raise SandboxError("the sandbox server did not become ready")
    info: dict[str, Any] = json.loads(message[1])
    return info


def job_message(job: Job, archive: bytes) -> bytes:
    header = {
        "argv": list(job.command),
        "tar": len(archive),
        "stdin": len(job.stdin or b""),
        "timeout_s": job.limits.timeout_s,
        "output_bytes": job.limits.output_bytes,
    }
    data = json.dumps(header).encode()
    return len(data).to_bytes(8, "big") + data + archive + (job.stdin or b"")


def run_job(
    stream: ServerStream, message: bytes, job: Job, buffer: CappedBuffer, kill: Callable[[], None]
) -> RunEnd:
    """Send one job and collect its output; past the deadline + a backstop, ``kill`` the container.

    Raises ``ServerLost`` if the stream ends before the run's end is reported.
    """
    sock = stream.sock
    sock.setblocking(True)
    try:
        sock.sendall(message)
    except OSError as exc:
        raise ServerLost(f"cannot send the job to the sandbox server: {exc}") from exc
    sock.setblocking(False)
    deadline = time.monotonic() + job.limits.timeout_s + BACKSTOP_S
    while True:
        got = stream.next(deadline)
        if got is None:
            kill()
            return RunEnd(137, True, False, buffer.truncated, True)
        kind, payload = got
        if kind == b"o":
            buffer.add("stdout", payload)
        elif kind == b"e":
            buffer.add("stderr", payload)
        elif kind == b"x":
            end = json.loads(payload)
            return RunEnd(
                int(end["exit_code"]),
                bool(end["timed_out"]),
                bool(end["oom_killed"]),
                bool(end["output_truncated"]) or buffer.truncated,
                bool(end["tainted"]),
            )


def memory_limit(memory_mb: int, info: dict[str, Any]) -> int:
    """Bytes for the container once its server is ready: the run's share plus the server's."""
    return (memory_mb + MARGIN_MB) * 1024 * 1024 + int(info.get("anon", 0))
