"""The client side of the process backend's fork server (``_procserver``).

``ForkServer`` starts the server on first use and again whenever it is found
dead; ``spawn`` hands it one run (descriptors over the control socket, the
pickled run over a pipe) and returns a ``ForkedRun`` to wait for or kill.
Only the sandbox that started a server can talk to it: the control channel
is a socket pair, never a path or a name another process could connect to.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import select
import socket
import struct
import subprocess
import tempfile
import threading
import time
from typing import Any

from sipdo.errors import SandboxError, SandboxUnavailableError

START_TIMEOUT_S = 120.0
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[3]); "
    "from sipdo.sandbox._procserver import main; "
    "del sys.path[:2]; "  # the sipdo root and -c's '': runs see a fresh interpreter's path
    "main(int(sys.argv[1]), sys.argv[2])"
)


class ForkServerLost(SandboxError):
    """The fork server died while a run was in its hands (the run may be retried)."""


class ForkedRun:
    """One run in the server's hands: ``wait`` for its exit code, ``kill`` its process group."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self._status = b""

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(b"K")

    def wait(self, timeout: float | None) -> int | None:
        """The exit code (negative: killed by that signal), or None if ``timeout`` passed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self._status) < 5:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.conn], [], [], left)[0]:
                return None
            try:
                data = self.conn.recv(5 - len(self._status))
            except OSError:
                data = b""
            if not data:
                raise ForkServerLost("the fork server died during the run")
            self._status += data
        (status,) = struct.unpack(">i", self._status[1:5])
        return os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        self.conn.close()


class ForkServer:
    """A ``_procserver`` process, started in the background and again whenever found dead.

    ``root`` is the jail's mount point ("" for no jail); ``env`` the scrubbed
    environment the server (and so every run) has. Preloading takes seconds
    (pytest rewrites its plugins' modules), so ``start`` returns at once and
    ``ready`` says when runs can be handed over; until then the sandbox runs
    them fresh.
    """

    def __init__(self, python: str, root: str, env: dict[str, str]) -> None:
        self.python = python
        self.root = root
        self.env = env
        self.starts = 0
        self.preload_missing: list[str] = []
        self.address_space = 0  # bytes the server has mapped, which every forked run inherits
        self.last_error = ""
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._ctl: socket.socket | None = None
        self._starter: threading.Thread | None = None
        self._launching: subprocess.Popen[bytes] | None = None  # a server still preloading
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def ready(self) -> bool:
        """Whether the server serves now; if it is dead and not starting, start it again."""
        with self._lock:
            if self._alive():
                return True
            if not self._closed and (self._starter is None or not self._starter.is_alive()):
                self._stop()
                self._starter = threading.Thread(
                    target=self._start, name="sipdo-forkserver", daemon=True
                )
                self._starter.start()
            return False

    def start(self) -> None:
        """Start the server in the background (``ready`` tells when it serves)."""
        self.ready()

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> bool:
        """Start the server if needed and wait until it serves; False if it could not start."""
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            starter = self._starter
            if starter is not None:
                starter.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                return self.ready()
            if not self._alive() and self.last_error:
                return False
        return True

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._ctl is not None

    def _start(self) -> None:
        try:
            proc, ctl = self._launch()
        except SandboxUnavailableError as exc:
            self.last_error = str(exc)
            return
        with self._lock:
            if self._closed:
                ctl.close()
                proc.wait()
                return
            self._proc, self._ctl = proc, ctl
            self.starts += 1
            self.last_error = ""

    def _launch(self) -> tuple[subprocess.Popen[bytes], socket.socket]:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sipdo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        argv = [self.python, "-c", _BOOT, str(theirs.fileno()), self.root, sipdo_root]
        with tempfile.TemporaryFile() as errors:
            try:
                proc = subprocess.Popen(
                    argv,
                    env=self.env,
                    cwd="/",
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                    pass_fds=[theirs.fileno()],
                    start_new_session=True,
                )
            except OSError as exc:
                ours.close()
                raise SandboxUnavailableError(f"cannot start the fork server: {exc}") from exc
            finally:
                theirs.close()
            self._launching = proc
            ours.settimeout(START_TIMEOUT_S)
            try:
                hello = ours.recv(4096)
            except OSError:
                hello = b""
            finally:
                self._launching = None
            if not hello.startswith(b"R"):
                proc.kill()
                proc.wait()
                ours.close()
                errors.seek(0)
                detail = errors.read()[-2000:].decode("utf-8", "replace").strip()
                raise SandboxUnavailableError(f"the fork server did not start: {detail}")
        ours.settimeout(None)
        info = json.loads(hello[1:])
        self.preload_missing = list(info["missing"])
        self.address_space = int(info["address_space"])
        return proc, ours

    def spawn(
        self, run: dict[str, Any], stdio: tuple[int, int, int], netns: int | None
    ) -> ForkedRun:
        """Hand ``run`` to the server with the run's stdin / stdout / stderr pipe ends."""
        conn, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        job_r, job_w = os.pipe()
        fds = [theirs.fileno(), job_r, *stdio, *([] if netns is None else [netns])]
        try:
            with self._lock:
                ctl = self._ctl
                if ctl is None or not self._alive():
                    raise ForkServerLost("the fork server is not running")
                try:
                    socket.send_fds(ctl, [b"J"], fds)
                except OSError as exc:
                    self._stop()
                    raise ForkServerLost(f"the fork server is gone: {exc}") from exc
        except BaseException:
            conn.close()
            os.close(job_w)
            raise
        finally:
            theirs.close()
            os.close(job_r)
        try:
            with open(job_w, "wb") as pipe:
                pipe.write(pickle.dumps(run, protocol=pickle.HIGHEST_PROTOCOL))
        except BrokenPipeError:
            pass  # the runner died before reading; its exit status says so
        return ForkedRun(conn)

    def _stop(self) -> None:
        if self._ctl is not None:
            self._ctl.close()  # the server exits (killing its runs) when this closes
            self._ctl = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop()
        launching = self._launching
        if launching is not None:  # still preloading: no run will use it, do not wait for it
            with contextlib.suppress(ProcessLookupError):
                launching.kill()
        starter = self._starter
        if starter is not None:
            starter.join(timeout=START_TIMEOUT_S)
