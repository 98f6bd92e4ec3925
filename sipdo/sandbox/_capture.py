"""Bounded output capture: read a child's pipes up to a cap, keep draining past it.

A child that floods its pipes must never make the host buffer unbounded data,
and must never block because nobody reads: past the cap, bytes are read and
discarded until the writer is gone.
"""

from __future__ import annotations

import os
import selectors
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class CappedBuffer:
    """Keeps at most ``cap`` bytes across all streams that share it; counts the rest."""

    cap: int
    kept: int = 0
    truncated: bool = False
    parts: dict[str, bytearray] = field(default_factory=dict)

    def add(self, stream: str, data: bytes) -> None:
        room = max(0, self.cap - self.kept)
        if len(data) > room:
            self.truncated = True
            data = data[:room]
        if data:
            self.parts.setdefault(stream, bytearray()).extend(data)
            self.kept += len(data)

    def text(self, stream: str) -> str:
        return bytes(self.parts.get(stream, b"")).decode("utf-8", errors="replace")


def pump(
    streams: dict[str, int],
    stdin_fd: int | None,
    stdin_data: bytes,
    buffer: CappedBuffer,
    deadline: float,
    on_timeout: Callable[[], None],
    grace_s: float = 2.0,
) -> bool:
    """Feed stdin and drain ``streams`` (name -> fd) until all reach EOF.

    When ``deadline`` (``time.monotonic``) passes, ``on_timeout`` is called once
    (it must kill the writers) and draining continues until EOF, or for at most
    ``grace_s`` more if an escaped writer still holds a pipe. Returns True when
    the deadline passed. The fds are closed on return.
    """
    timed_out = False
    with selectors.DefaultSelector() as sel:
        for name, fd in streams.items():
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ, name)
        view = memoryview(stdin_data)
        if stdin_fd is not None:
            if view:
                os.set_blocking(stdin_fd, False)
                sel.register(stdin_fd, selectors.EVENT_WRITE, None)
            else:
                os.close(stdin_fd)
                stdin_fd = None
        try:
            while sel.get_map():
                wait = deadline - time.monotonic()
                if wait <= 0 and not timed_out:
                    timed_out = True
                    on_timeout()
                    deadline = time.monotonic() + grace_s
                    continue
                if wait <= 0:
                    break
                events = sel.select(timeout=wait)
                for key, _ in events:
                    if key.data is None and stdin_fd is not None:
                        try:
                            sent = os.write(stdin_fd, view[:65536])
                        except (BrokenPipeError, BlockingIOError) as exc:
                            sent = 0 if isinstance(exc, BlockingIOError) else len(view)
                        view = view[sent:]
                        if not view:
                            sel.unregister(stdin_fd)
                            os.close(stdin_fd)
                            stdin_fd = None
                        continue
                    try:
                        data = os.read(key.fd, 65536)
                    except BlockingIOError:
                        continue
                    if data:
                        buffer.add(key.data, data)
                    else:
                        sel.unregister(key.fd)
                        os.close(key.fd)
        finally:
            for key in list(sel.get_map().values()):
                sel.unregister(key.fd)
                os.close(key.fd)
            if stdin_fd is not None:
                os.close(stdin_fd)
    return timed_out
