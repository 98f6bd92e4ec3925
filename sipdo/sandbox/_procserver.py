"""The process backend's fork server: one long-lived, single-threaded process per sandbox.

Started by ``ForkServer`` with a scrubbed environment and nothing open but
its control socket. It preloads pytest and Hypothesis, makes itself
non-dumpable (no ptrace, no ``/proc/<pid>/mem`` for anyone without
``CAP_SYS_PTRACE``), then serves. Each request prepares one run before
its job is known; it carries, as passed descriptors, a status socket, the
run's job socket and, with cgroups, the run's fresh cgroup (its
``cgroup.procs`` files). The server forks a runner per request and nothing
else. Jailed, the runner starts as PID 1 of a new PID namespace
(``Jail.fork_init``); it closes every descriptor but the job socket, joins
the cgroup, makes the other namespaces (mount, network, IPC, UTS, cgroup)
and the private read-only root (``Jail.prepare``), and forks the program's
process, PID 2, which waits for the job. The job is the run's stdin /
stdout / stderr pipes and the pickled run (job, environment, rlimits, uid):
PID 2 puts the pipes on fds 0-2, closes every other descriptor, mounts a
tmpfs ``/sandbox`` with the job's files, sizes ``/tmp`` and ``/dev/shm`` to
the job's, drops to its uid with rlimits and no-new-privileges
(``Jail.start``: the same jail as a fresh run's), then runs the program
(``_zygote.run_python``) instead of exec-ing an interpreter. A runner that
gets no job (its socket closes) exits. PID 1 mirrors the program's exit
status, and the server sends it on the status socket once PID 1 is reaped
(when everything of the run is gone with its namespace). A ``K`` byte on
that socket, or its closing, kills the runner's process group and the
runner (with PID 1, everything of the run). The server exits, killing every
run, when the control socket closes.

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
import select
import selectors
import signal
import socket
import struct
import sys
import traceback
from typing import Any, NoReturn

from sipdo.sandbox import _zygote
from sipdo.sandbox._cgroup import join_fds
from sipdo.sandbox._jail import Jail

_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE = 1, 4
MAX_FDS = 8


def main(ctl_fd: int, root: str) -> NoReturn:
    """Serve runs on the control socket ``ctl_fd``; ``root`` is the jail's mount point or ""."""
    missing = _zygote.preload()
    jail = Jail(root, netns_ahead=0) if root else None  # network namespaces come with runs
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
        self.pidfd = os.pidfd_open(os.getpid())  # readable once this server has died
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
                try:
                    self.on_event(key)
                except Exception:  # one run's trouble must not end the others
                    traceback.print_exc(file=sys.stderr)
                    sys.stderr.flush()

    def on_event(self, key: selectors.SelectorKey) -> None:
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
        if len(fds) < 2:
            for fd in fds:
                os.close(fd)
            return
        conn = socket.socket(fileno=fds[0])
        try:
            pid = self.jail.fork_init() if self.jail is not None else os.fork()
        except OSError as exc:
            # No runner (the host is out of processes or memory): the server lives on,
            # and the closed status socket tells the client this run has no status.
            print(f"fork server: cannot fork a run: {exc}", file=sys.stderr, flush=True)
            conn.close()
            for fd in fds[1:]:
                os.close(fd)
            return
        if pid == 0:
            try:
                self.runner(fds[1], fds[2:])
            finally:  # never back into the server's loop
                os._exit(_zygote.SETUP_FAILED)
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
            kill(pid)
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
            kill(pid)
        os._exit(0)

    # -- in the forked runner ------------------------------------------------------
    def runner(self, job_fd: int, cgroup_fds: list[int]) -> NoReturn:
        """Get ready for a run before its job is known, wait for the job, run it.

        Jailed, this process is PID 1 of a new PID namespace: it joins the run's
        cgroup, makes the other namespaces and the root, and forks the program's
        process, which then waits for the job. A failure before the job came is
        reported with the job, on its stderr.
        """
        failed: BaseException | None = None
        try:
            _zygote.reset_signals()
            self.libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with the server
            if select.select([self.pidfd], [], [], 0)[0]:
                os._exit(_zygote.SETUP_FAILED)  # the server died before the line above
            os.setsid()
            join_fds(cgroup_fds)
            _close_all_but({job_fd})
            if self.jail is not None:
                self.jail.unshare_ahead()
                self.jail.prepare()  # returns in PID 2; PID 1 relays
        except BaseException as exc:
            failed = exc
        try:
            job = socket.socket(fileno=job_fd)
            msg, fds, _, _ = socket.recv_fds(job, 1, 3)
            if not msg:
                os._exit(0)  # a run prepared ahead that was never used
            for fd, target in zip(fds, (0, 1, 2), strict=True):
                os.dup2(fd, target)
            if failed is not None:
                raise failed
            with job.makefile("rb") as pipe:
                run = pickle.load(pipe)
            job.close()
            _close_all_but({0, 1, 2})
            os.environ.clear()
            os.environ.update(run["env"])
            if self.jail is None:
                os.chdir(run["cwd"])
                for which, value in run["rlimits"]:
                    resource.setrlimit(which, (value, value))
            else:
                self.jail.start(run["job"], run["uid"], run["rlimits"], resize=True)
                # The program must not run as a non-dumpable process (its /proc/self is root's).
                self.libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
        except BaseException as exc:
            _zygote.setup_failed(exc)
        _zygote.run_python(run["entry"])


def kill(pid: int) -> None:
    """SIGKILL the run whose first process is ``pid``: its group, and it even before setsid."""
    for send in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            send(pid, signal.SIGKILL)


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
