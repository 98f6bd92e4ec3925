"""Closing a process sandbox whose fork server is still preloading ends that server at once.

The server preloads pytest and Hypothesis for seconds; a short-lived sandbox
(a ``sipdo run`` with few runs, a test) used to wait for it to finish
preloading only to stop it (~6 s a close on a loaded machine).
"""

from __future__ import annotations

import time

from sipdo.sandbox.process import ProcessSandbox


def test_close_during_the_server_preload_ends_it_without_waiting() -> None:
    box = ProcessSandbox(mode="forkserver")
    server = box._server
    assert server is not None
    deadline = time.monotonic() + 30
    while server._launching is None and time.monotonic() < deadline:
        time.sleep(0.005)  # until the server process exists (it then preloads for seconds)
    launching = server._launching
    assert launching is not None, "the fork server was not being started"
    started = time.monotonic()
    box.close()
    took = time.monotonic() - started
    assert launching.poll() is not None  # the preloading server is gone, and reaped
    assert server.starts == 0  # it never served: closed before it was ready
    assert server.pid is None
    assert took < 3.0, took
