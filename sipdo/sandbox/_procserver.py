"""The process backend's fork server: one long-lived, single-threaded process per sandbox.

Started by ``ForkServer`` with a scrubbed environment and nothing open but
its control socket. It preloads pytest and Hypothesis, makes itself
non-dumpable (no ptrace, no ``/proc/<pid>/mem`` for anyone without
``CAP_SYS_PTRACE``), then serves. Each request carries, as passed
descriptors, a status socket, a pipe with the pickled run (job, environment,
rlimits, uid, cgroup), the run's stdin / stdout / stderr pipes and, jailed,
a fresh network namespace. The server forks a runner per request and
nothing else; the runner reads the run, puts the pipes on fds 0-2, closes
every other descriptor and builds the same jail as a fresh run (``Jail``:
new namespaces, a private read-only root with tmpfs ``/sandbox`` and
``/tmp``, its own uid and cgroup, rlimits, no-new-privileges), then runs
the program in the jailed grandchild (``_zygote.run_python``) instead of
exec-ing an interpreter. The runner is the run's outer relay: its exit
status is the program's, and the server sends it on the status socket. A
``K`` byte on that socket, or its closing, kills the runner's process group
(and with PID 1 of the run's namespace, everything of the run). The server
exits, killing every run, when the control socket closes.

The server holds no secret (its environment is the runs' scrubbed one, it
never sees the caller's memory) and no state a run can change: runs are
copy-on-write copies that cannot write to it, signal it (other uid, other
PID namespace) or trace it (non-dumpable).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pickle
import resource
import selectors
import signal
import socket
import struct
import sys
from typing import Any, NoReturn

from sipdo.sandbox import _zygote

_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE = 1, 4
MAX_FDS = 8


def main(ctl_fd: int, root: str) -> NoReturn:
    """Serve runs on the control socket ``ctl_fd``; ``root`` is the jail's mount point or ""."""
    missing = _zygote.preload()
    jail = None
    if root:
        from sipdo.sandbox._jail import Jail

        jail = Jail(root, netns_ahead=0)  # namespaces arrive made by the client
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    ctl = socket.socket(fileno=ctl_fd)
    hello = {"missing": missing, "address_space": _address_space()}
    ctl.sendall(b"R" + json.dumps(hello).encode())
    Server(ctl, jail, libc).serve()


class Server:
    def __init__(self, ctl: socket.socket, jail: Any, libc: Any) -> None:
        self.ctl = ctl
        self.jail = jail
        self.libc = libc
        self.runs: dict[int, socket.socket] = {}
        self.by_conn: dict[int, int] = {}
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.sel = selectors.DefaultSelector()
        self.sel.register(ctl, selectors.EVENT_READ, "ctl")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")

    def serve(self) -> NoReturn:
        while True:
            for key, _ in self.sel.select():
                if key.data == "ctl":
                    self.on_request()
                elif key.data == "wake":
                    with contextlib.suppress(OSError):
                        os.read(self.wake_r, 4096)
                    self.reap()
                else:
                    self.on_conn(key.fileobj)  # type: ignore[arg-type]

    def on_request(self) -> None:
        try:
            msg, fds, _, _ = socket.recv_fds(self.ctl, 16, MAX_FDS)
        except InterruptedError:
            return
        except OSError:
            msg, fds = b"", []
        if not msg:
            self.exit()
        if len(fds) < 5:
            for fd in fds:
                os.close(fd)
            return
        conn = socket.socket(fileno=fds[0])
        pid = os.fork()
        if pid == 0:
            self.runner(fds)
        for fd in fds[1:]:
            os.close(fd)
        self.runs[pid] = conn
        self.by_conn[conn.fileno()] = pid
        self.sel.register(conn, selectors.EVENT_READ, "conn")

    def on_conn(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(64)
        except OSError:
            data = b""
        pid = self.by_conn.get(conn.fileno())
        if pid is not None and (not data or b"K" in data):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if not data:
            self.sel.unregister(conn)  # the status, if still due, is not wanted any more

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.runs.pop(pid, None)
            if conn is None:
                continue
            self.by_conn.pop(conn.fileno(), None)
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(conn)
            with contextlib.suppress(OSError):
                conn.sendall(b"X" + struct.pack(">i", status))
            conn.close()

    def exit(self) -> NoReturn:
        for pid in self.runs:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        os._exit(0)

    # -- in the forked runner ------------------------------------------------------
    def runner(self, fds: list[int]) -> NoReturn:
        try:
            _zygote.reset_signals()
            self.libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with the server
            if os.getppid() == 1:
                os._exit(_zygote.SETUP_FAILED)
            os.setsid()
            _conn, job_fd, stdin, stdout, stderr, *rest = fds
            for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
                os.dup2(fd, target)
            with os.fdopen(job_fd, "rb") as pipe:
                run = pickle.load(pipe)
            netns = rest[0] if rest else None
            keep = {0, 1, 2} | ({netns} if netns is not None else set())
            _close_all_but(keep)
            os.environ.clear()
            os.environ.update(run["env"])
        except BaseException as exc:
            _zygote.setup_failed(exc)
        self.enter(run, netns)
        _zygote.run_python(run["entry"])

    def enter(self, run: dict[str, Any], netns: int | None) -> None:
        """Jail this process as a fresh run would be (returns in the jailed grandchild)."""
        try:
            if self.jail is None:
                os.chdir(run["cwd"])
                for which, value in run["rlimits"]:
                    resource.setrlimit(which, (value, value))
                return
            cgroup = run["cgroup"]
            join = cgroup.join if cgroup is not None else None
            setup = self.jail.preexec(run["job"], run["uid"], run["rlimits"], netns, join)
            setup()
            if netns is not None:
                os.close(netns)
            # The program must not run as a non-dumpable process (its /proc/self is root's).
            self.libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
        except BaseException as exc:
            _zygote.setup_failed(exc)


def _address_space() -> int:
    """This process's mapped address space in bytes (what every forked run starts with)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _close_all_but(keep: set[int]) -> None:
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "")
