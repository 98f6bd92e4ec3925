"""The client side of the process backend's fork server (``_procserver``).

``ForkServer`` starts the server on first use and again whenever it is found
dead. A run is prepared before its job is known: ``take`` returns a
``Spare``, a runner the server forked ahead (over the control socket) that
has joined a fresh cgroup of its own and, jailed, is PID 1 of new
namespaces; a background thread keeps ``spares`` of them ready, so a run
waits neither for the fork nor for the cgroup join (~12 ms on cgroup v1).
Each spare serves one run and no other: ``Spare.start`` sends it the job
(descriptors and the pickled run over its own socket) and returns a
``ForkedRun`` to wait for or kill. Cgroups of finished runs are removed by
the same thread, after the result is returned. Only the sandbox that started
a server can talk to it: the control channel is a socket pair, never a path
or a name another process could connect to.
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
from typing import IO, Any

from sipdo.errors import SandboxError, SandboxUnavailableError
from sipdo.sandbox._cgroup import CgroupFactory, RunCgroup
from sipdo.sandbox.base import Limits

START_TIMEOUT_S = 120.0
LOST_WAIT_S = 1.0  # how long a server that lost a run is given to end, if it is ending
RELAYS = 1  # a forked run's processes besides its program's: PID 1 (see _procserver)
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[3]); "
    "from sipdo.sandbox._procserver import main; "
    "del sys.path[:2]; "  # the sipdo root and -c's '': runs see a fresh interpreter's path
    "main(int(sys.argv[1]), sys.argv[2])"
)


class ForkServerLost(SandboxError):
    """A run in the server's hands ended without its status: the server died, or could
    not fork the run (the run may be retried)."""


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
                raise ForkServerLost("the fork server ended the run without its status")
            self._status += data
        (status,) = struct.unpack(">i", self._status[1:5])
        return os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        self.conn.close()


class Spare:
    """A runner forked ahead, waiting for its one job; ``cgroup`` is its own (None: no cgroups)."""

    def __init__(
        self, conn: socket.socket, job: socket.socket, cgroup: RunCgroup | None, generation: int
    ) -> None:
        self.conn = conn
        self.job = job
        self.cgroup = cgroup
        self.generation = generation  # which start of the server forked it

    def start(self, run: dict[str, Any], stdio: tuple[int, int, int]) -> ForkedRun:
        """Send the job: the run's stdin / stdout / stderr pipe ends and ``run``."""
        try:
            socket.send_fds(self.job, [b"J"], list(stdio))
            self.job.sendall(pickle.dumps(run, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            pass  # the runner died before reading; its exit status (or the server's loss) says so
        finally:
            self.job.close()
        return ForkedRun(self.conn)

    def discard(self) -> None:
        """Give the runner up unused (it exits, the server reaps it)."""
        self.job.close()
        self.conn.close()


class ForkServer:
    """A ``_procserver`` process, started in the background and again whenever found dead.

    ``root`` is the jail's mount point ("" for no jail); ``env`` the scrubbed
    environment the server (and so every run) has; ``cgroups`` makes each
    run's cgroup, set ahead to ``limits`` (a run with others changes them
    before its job is sent); ``spares`` is how many runs are kept prepared.
    Preloading takes seconds (pytest rewrites its plugins' modules), so
    ``start`` returns at once and ``ready`` says when runs can be handed
    over; until then the sandbox runs them fresh.
    """

    def __init__(
        self,
        python: str,
        root: str,
        env: dict[str, str],
        *,
        cgroups: CgroupFactory | None = None,
        limits: Limits | None = None,
        spares: int = 1,
    ) -> None:
        self.python = python
        self.root = root
        self.env = env
        self.cgroups = cgroups
        self.limits = limits or Limits()
        self.spare_count = spares
        self.starts = 0
        self.preload_missing: list[str] = []
        self.address_space = 0  # bytes the server has mapped, which every forked run inherits
        self.last_error = ""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # for the preparing thread
        self._proc: subprocess.Popen[bytes] | None = None
        self._ctl: socket.socket | None = None
        self._errors: IO[bytes] | None = None  # the running server's stderr (an unlinked file)
        self._starter: threading.Thread | None = None
        self._launching: subprocess.Popen[bytes] | None = None  # a server still preloading
        self._closed = False
        self._spares: list[Spare] = []
        self._finished: list[RunCgroup] = []  # cgroups of ended runs, to remove
        self._preparer = threading.Thread(target=self._prepare_ahead, name="sipdo-spares")
        self._preparer.daemon = True
        self._preparer.start()

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
            proc, ctl, errors = self._launch()
        except SandboxUnavailableError as exc:
            self.last_error = str(exc)
            return
        with self._lock:
            if self._closed:
                ctl.close()
                proc.wait()
                errors.close()
                return
            self._proc, self._ctl, self._errors = proc, ctl, errors
            self.starts += 1
            self.last_error = ""
            self._changed.notify_all()

    def _launch(self) -> tuple[subprocess.Popen[bytes], socket.socket, IO[bytes]]:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sipdo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        argv = [self.python, "-c", _BOOT, str(theirs.fileno()), self.root, sipdo_root]
        errors = tempfile.TemporaryFile()  # noqa: SIM115 - open while the server runs (_stop)
        try:
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
        except BaseException:
            errors.close()
            raise
        ours.settimeout(None)
        info = json.loads(hello[1:])
        self.preload_missing = list(info["missing"])
        self.address_space = int(info["address_space"])
        return proc, ours, errors

    def take(self) -> Spare:
        """A spare for one run: one prepared ahead, else one prepared now."""
        with self._lock:
            if not self._alive():
                raise ForkServerLost("the fork server is not running")
            while self._spares:
                spare = self._spares.pop()
                # A spare whose status socket is readable before its job is sent has no
                # runner any more (the server could not fork it, or it was killed).
                if spare.generation == self.starts and not _readable(spare.conn):
                    self._changed.notify_all()
                    return spare
                self._drop(spare)
        return self._prepare()

    def lost(self) -> str:
        """A run ended without its status: drop the spares and, if the server is ending,
        let it end (the next ``ready`` starts another). What the server last wrote on
        its stderr, to explain."""
        with self._lock:
            while self._spares:
                self._drop(self._spares.pop())
            proc = self._proc
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=LOST_WAIT_S)
                if proc.poll() is not None:
                    self._stop()
            self._changed.notify_all()
            return _tail(self._errors) if self._errors is not None else ""

    def finished(self, cgroup: RunCgroup) -> None:
        """``cgroup``'s run has ended: remove it in the background."""
        with self._lock:
            self._finished.append(cgroup)
            self._changed.notify_all()

    def _prepare(self) -> Spare:
        cgroup = self.cgroups.create(self.limits, RELAYS) if self.cgroups is not None else None
        conn, theirs_conn = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        job, theirs_job = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fds = [theirs_conn.fileno(), theirs_job.fileno()]
        try:
            procs = cgroup.open_procs() if cgroup is not None else []
            try:
                with self._lock:
                    ctl = self._ctl
                    if ctl is None or not self._alive():
                        raise ForkServerLost("the fork server is not running")
                    try:
                        socket.send_fds(ctl, [b"S"], [*fds, *procs])
                    except OSError as exc:
                        self._stop()
                        raise ForkServerLost(f"the fork server is gone: {exc}") from exc
                    return Spare(conn, job, cgroup, self.starts)
            finally:
                for fd in procs:
                    os.close(fd)
        except BaseException:
            conn.close()
            job.close()
            if cgroup is not None:
                self.finished(cgroup)
            raise
        finally:
            theirs_conn.close()
            theirs_job.close()

    def _prepare_ahead(self) -> None:
        """Keep ``spare_count`` spares ready and remove finished cgroups, until closed."""
        while True:
            with self._lock:
                while not (
                    self._closed
                    or self._finished
                    or (self._alive() and len(self._spares) < self.spare_count)
                ):
                    self._changed.wait(timeout=1.0)  # also notices a server found dead
                if self._closed:
                    return
                finished, self._finished = self._finished, []
            for cgroup in finished:
                cgroup.remove()
            with self._lock:
                wanted = self._alive() and len(self._spares) < self.spare_count
            if not wanted:
                continue
            try:
                spare = self._prepare()
            except (SandboxError, OSError):
                with self._lock:  # runs prepare their own meanwhile (and see the error)
                    self._changed.wait(timeout=1.0)
                continue
            with self._lock:
                if self._closed:
                    self._drop(spare)
                else:
                    self._spares.append(spare)

    def _drop(self, spare: Spare) -> None:
        spare.discard()
        if spare.cgroup is not None:
            self._finished.append(spare.cgroup)

    def _stop(self) -> None:
        while self._spares:
            self._drop(self._spares.pop())
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
        if self._errors is not None:
            self._errors.close()
            self._errors = None

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
        with self._lock:
            self._changed.notify_all()
        self._preparer.join(timeout=START_TIMEOUT_S)
        with self._lock:
            finished, self._finished = self._finished, []
        for cgroup in finished:
            cgroup.remove()


def _readable(conn: socket.socket) -> bool:
    try:
        return bool(select.select([conn], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _tail(errors: IO[bytes], size: int = 2000) -> str:
    """The last ``size`` bytes the server wrote to its stderr file, as text."""
    try:
        errors.seek(0, os.SEEK_END)
        errors.seek(max(0, errors.tell() - size))
        return errors.read().decode("utf-8", "replace").strip()
    except (OSError, ValueError):
        return ""
