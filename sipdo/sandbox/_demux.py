"""Stream a Docker exec over its hijacked socket: stdin in, capped stdout/stderr out.

The engine multiplexes stdout and stderr as frames (1 byte stream id, 3 zero
bytes, 4 bytes big-endian length, payload). Past the output cap, frames are
parsed and discarded, and the socket is drained until the engine closes it,
so a flooding program can never wedge the engine behind a full pipe.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import time
from collections.abc import Callable

from sipdo.sandbox._capture import CappedBuffer

_STREAMS = {1: "stdout", 2: "stderr"}


class FrameParser:
    """Incremental parser of the engine's multiplexed stream."""

    def __init__(self, buffer: CappedBuffer) -> None:
        self.buffer = buffer
        self.pending = bytearray()
        self.stream = ""
        self.left = 0

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.left:
                chunk = view[: self.left]
                self.buffer.add(self.stream, bytes(chunk))
                self.left -= len(chunk)
                view = view[len(chunk) :]
                continue
            need = 8 - len(self.pending)
            self.pending.extend(view[:need])
            view = view[need:]
            if len(self.pending) == 8:
                kind, self.left = struct.unpack(">BxxxL", self.pending)
                self.stream = _STREAMS.get(kind, "stderr")
                self.pending.clear()


def stream_exec(
    sock: socket.socket,
    stdin_data: bytes,
    buffer: CappedBuffer,
    deadline: float,
    on_timeout: Callable[[], None],
    grace_s: float = 5.0,
) -> bool:
    """Send ``stdin_data`` then half-close; read frames until EOF. True if the deadline hit.

    At the deadline ``on_timeout`` is called once (it kills the container) and
    reading continues until EOF or ``grace_s`` later.
    """
    parser = FrameParser(buffer)
    sock.setblocking(False)
    view = memoryview(stdin_data)
    timed_out = False
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if view else 0))
        if not view:
            sock.shutdown(socket.SHUT_WR)
        while True:
            wait = deadline - time.monotonic()
            if wait <= 0:
                if timed_out:
                    break
                timed_out = True
                on_timeout()
                deadline = time.monotonic() + grace_s
                continue
            for _, mask in sel.select(timeout=wait):
                if mask & selectors.EVENT_WRITE and view:
                    try:
                        view = view[sock.send(view[:65536]) :]
                    except BlockingIOError:
                        pass
                    except OSError:
                        view = view[len(view) :]
                    if not view:
                        sel.modify(sock, selectors.EVENT_READ)
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_WR)
                if mask & selectors.EVENT_READ:
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        return timed_out
                    parser.feed(data)
    return timed_out
