"""``ProcessSandbox``: the fallback backend when no Docker engine is reachable.

Each run is a local child process: jailed in fresh namespaces with a per-run
cgroup where the machine allows it (root on Linux), else under rlimits only.
``isolation`` is computed from what actually works here. ``command[0] ==
"python"`` is the host interpreter running sipdo (``sys.executable``), so
whatever it has installed (pytest, Hypothesis) is importable in the sandbox.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.metadata
import logging
import math
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Literal, Protocol

from sipdo.errors import (
    SandboxError,
    SandboxInputError,
    SandboxResourceError,
    SandboxUnavailableError,
)
from sipdo.sandbox._capture import CappedBuffer, pump
from sipdo.sandbox._cgroup import CgroupFactory, RunCgroup
from sipdo.sandbox._jail import WORKDIR, Jail, host_python
from sipdo.sandbox._zygote import HASH_SEED, SETUP_FAILED, SETUP_MARK, Entry, python_entry
from sipdo.sandbox.base import ExecResult, Job, Limits, Sandbox
from sipdo.sandbox.forkserver import RELAYS, ForkedRun, ForkServer, ForkServerLost, Spare

# Without namespaces the program runs as the caller's user: it can read the
# caller's /proc/<pid>/environ, so a scrubbed environment is no "env" claim.
BASIC_ISOLATION = frozenset({"wall_time", "output"})
CGROUP_ISOLATION = frozenset({"memory", "cpu_time"})
JAILED_ISOLATION = frozenset(
    {
        "network",
        "host_files_read",
        "host_files_write",
        "env",
        "processes",
        "wall_time",
        "output",
        "privileges",
        "run_isolation",
    }
)

_PATH = "/usr/local/bin:/usr/bin:/bin"
log = logging.getLogger(__name__)
Mode = Literal["auto", "forkserver", "fresh"]
MODES = ("auto", "forkserver", "fresh")


def scrubbed_env(home: str, tmp: str) -> dict[str, str]:
    """The whole environment a sandboxed program sees: nothing of the caller's."""
    return {
        "PATH": f"{os.path.dirname(host_python())}:{_PATH}",
        "HOME": home,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONIOENCODING": "utf-8",
    }


def forked_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of a fork server and of its runs: ``env`` with the servers' hash seed."""
    return {**env, "PYTHONHASHSEED": HASH_SEED}


def rlimits(limits: Limits, *, per_uid: bool) -> list[tuple[int, int]]:
    """(resource, value) pairs for the child; soft == hard so it cannot raise them.

    ``RLIMIT_NPROC`` counts every process of the uid, so it is only set when
    the run has a uid of its own (``per_uid``).
    """
    pairs = [
        (resource.RLIMIT_CPU, math.ceil(limits.timeout_s * limits.cpus)),
        (resource.RLIMIT_AS, limits.memory_mb * 1024 * 1024),
        (resource.RLIMIT_FSIZE, limits.disk_mb * 1024 * 1024),
        (resource.RLIMIT_NOFILE, 256),
        (resource.RLIMIT_CORE, 0),
    ]
    if per_uid:
        pairs.append((resource.RLIMIT_NPROC, limits.pids))
    return pairs


def _apply_rlimits(pairs: list[tuple[int, int]]) -> Callable[[], None]:
    def apply() -> None:
        for which, value in pairs:
            resource.setrlimit(which, (value, value))

    return apply


def write_files(root: str, job: Job) -> None:
    """Create ``job``'s directories and files under ``root`` (names were validated)."""
    for directory in sorted(job.directories):
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    for name, content in job.files.items():
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(os.path.join(root, name), flags, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)


def resolve_command(command: tuple[str, ...]) -> list[str]:
    """Map ``python`` to the host interpreter; other names are looked up on PATH."""
    if command[0] == "python":
        return [host_python(), *command[1:]]
    return list(command)


@functools.cache
def _host_runtime() -> str:
    versions = []
    for name in ("hypothesis", "pytest"):
        try:
            versions.append(f"{name}={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name}=-")
    return " ".join(["process", host_python(), sys.version.replace("\n", " "), *versions])


class ProcessSandbox(Sandbox):
    """Runs each job as a local child process; ``isolation`` says what is enforced here.

    As root on Linux (``namespaces=None`` probes it, ``True`` requires it) each
    run gets new mount / PID / network / IPC / UTS namespaces: a private
    read-only root holding only the system directories and the interpreter,
    tmpfs ``/sandbox`` (the working directory) and ``/tmp`` of ``disk_mb``, no
    network at all, its own uid (no capabilities, no-new-privileges), and
    every process it started is killed when it ends. Where a child cgroup of
    the caller's own can be made, the whole run shares one memory limit
    (no swap), one CPU quota (``cpus``) and one process count (``pids``), and
    ``isolation`` adds ``memory`` and ``cpu_time``. Rlimits apply to every
    process as well: address space (``memory_mb``), CPU seconds
    (``timeout_s * cpus``), file size (``disk_mb``), open files, and the
    process count per run (each run has a uid of its own).

    Without namespaces (not root, or ``namespaces=False``) it scrubs the
    environment (which the program can still read from the caller's ``/proc``
    entry, being the same user), applies the rlimits except the process count,
    kills the process group on timeout and caps output; ``isolation`` claims
    only ``wall_time`` and ``output``.
    ``command[0] == "python"`` is always ``sys.executable`` (by its real directory).

    ``mode="forkserver"`` (what ``"auto"`` picks) runs ``python FILE``,
    ``python -m MOD`` and ``python -c CODE`` in a child forked from a
    long-lived server that has pytest and Hypothesis imported already (see
    ``_procserver``): the child is jailed exactly as a fresh run is (same
    namespaces, root, uid, cgroup, rlimits, environment), so every
    ``isolation`` claim is the same in both modes; it only skips the
    interpreter start and those imports, and the server prepares up to
    ``max_concurrency`` runs (processes, cgroups, namespaces, root) before
    their jobs come, each for one run; its interpreter has the server's
    hash seed, ``PYTHONHASHSEED=0`` for every server (see ``_zygote``), which
    its environment says too. Other commands, and ``python`` with
    other options, run fresh. ``mode="fresh"`` starts every run as a new
    process. Should the server die, it is started again, and a run it held is
    run once more.
    """

    kind = "process"
    isolation = BASIC_ISOLATION

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        max_concurrency: int = 2,
        namespaces: bool | None = None,
        mode: Mode = "auto",
    ) -> None:
        if mode not in MODES:
            raise SandboxInputError(f"unknown mode {mode!r}; available: {', '.join(MODES)}")
        super().__init__(limits=limits, max_concurrency=max_concurrency)
        self.mode: Mode = "fresh"
        self._server: ForkServer | None = None
        self._jail: Jail | None = None
        self._cgroups: CgroupFactory | None = None
        self._finalizer: weakref.finalize[..., ProcessSandbox] | None = None
        self._uids = _UidAllocator()
        self._root = ""
        if namespaces is not False:
            try:
                self._jail = self._open_jail()
            except SandboxUnavailableError as exc:
                if namespaces:
                    raise
                log.warning("process sandbox: no namespaces (%s); basic isolation only", exc)
        if self._jail is not None:
            self.isolation = JAILED_ISOLATION
            try:
                factory = CgroupFactory()
                factory.probe()
                self._cgroups = factory
                self.isolation = JAILED_ISOLATION | CGROUP_ISOLATION
            except (SandboxUnavailableError, OSError) as exc:
                log.info("process sandbox: no per-run cgroups (%s); memory/CPU per process", exc)
        if mode != "fresh":
            self._open_server()
            self.mode = "forkserver"

    def _open_server(self) -> None:
        env = scrubbed_env(WORKDIR, "/tmp") if self._jail else scrubbed_env("/", "/tmp")
        server = ForkServer(
            host_python(),
            self._root,
            forked_env(env),
            cgroups=self._cgroups,
            limits=self.limits,
            spares=self.max_concurrency,
        )
        server.start()  # in the background: runs go fresh until it serves
        self._server = server
        self._server_finalizer = weakref.finalize(self, server.close)

    def wait_ready(self, timeout_s: float = 120.0) -> bool:
        """Wait until the fork server serves; False if it cannot, and at once in fresh mode.

        A ``mode="fresh"`` sandbox has no server: False says so, it is no failure.
        """
        return self._server is not None and self._server.wait_ready(timeout_s)

    @property
    def server_pid(self) -> int | None:
        """The fork server's pid while it runs (``mode="forkserver"``), else None."""
        return self._server.pid if self._server is not None else None

    @property
    def namespaces(self) -> bool:
        """Whether runs are jailed in namespaces (else: basic isolation only)."""
        return self._jail is not None

    @property
    def has_cgroups(self) -> bool:
        """Whether runs get a cgroup of their own (and ``memory`` / ``cpu_time`` hold)."""
        return self._cgroups is not None

    def _open_jail(self) -> Jail:
        root = tempfile.mkdtemp(prefix="sipdo-root-")
        try:
            self._jail = jail = Jail(root)
            try:
                probe = self.run({"p.py": "print('ok')"}, ["python", "p.py"])
            except SandboxError as exc:
                probe = ExecResult(1, "", str(exc))
            if probe.stdout != "ok\n":
                jail.close()
                detail = (probe.stderr or f"exit {probe.exit_code}").strip()[-300:]
                raise SandboxUnavailableError(f"namespaces do not work here: {detail}")
        except BaseException:
            self._jail = None
            os.rmdir(root)
            raise
        self._root = root
        # The jail's directory and namespaces go even if close() is never called.
        self._finalizer = weakref.finalize(self, _discard_jail, jail, root)
        return jail

    def runtime_id(self) -> str:
        """The host interpreter (every run's ``python``) and the libraries runs import."""
        return _host_runtime()

    def _release(self) -> None:
        if self._server is not None:
            self._server_finalizer()
        if self._finalizer is not None:
            self._finalizer()

    def _execute(self, job: Job) -> ExecResult:
        started = time.monotonic()
        entry = self._entry(job)
        if self._jail is not None or entry is not None:
            try:
                return self._execute_once(job, entry, started)
            except ForkServerLost as exc:
                # The run ended without its status (the server died or could not fork
                # it): one retry as a fresh run, which needs no server; the server is
                # started again meanwhile if it is gone.
                said = self._server.lost() if self._server is not None else ""
                log.warning("process sandbox: %s; retrying as a fresh run. %s", exc, said)
                return self._execute_once(job, None, time.monotonic())
            except SandboxError as exc:
                # A rare transient set-up failure was seen once under a loaded test
                # suite: one retry with fresh namespaces, then the error stands.
                log.warning("process sandbox: set-up failed (%s); retrying once", exc)
                return self._execute_once(job, self._entry(job), time.monotonic())
        base = tempfile.mkdtemp(prefix="sipdo-run-")

        try:
            workdir, tmp = os.path.join(base, "work"), os.path.join(base, "tmp")
            os.mkdir(workdir)
            os.mkdir(tmp)
            write_files(workdir, job)
            env = scrubbed_env(workdir, tmp)
            preexec = _apply_rlimits(rlimits(job.limits, per_uid=False))
            return self._spawn(job, _popen(job, workdir, env, preexec), started)
        except OSError as exc:
            raise SandboxResourceError(f"cannot prepare the working directory: {exc}") from exc
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def _entry(self, job: Job) -> Entry | None:
        """How the fork server runs ``job``, or None to run it fresh (also while it starts)."""
        if self._server is None or job.command[0] != "python":
            return None
        entry = python_entry(job.command[1:])
        return entry if entry is not None and self._server.ready() else None

    def _execute_once(self, job: Job, entry: Entry | None, started: float) -> ExecResult:
        if self._jail is not None:
            return self._execute_jailed(self._jail, job, started, entry)
        base = tempfile.mkdtemp(prefix="sipdo-run-")
        try:
            workdir, tmp = os.path.join(base, "work"), os.path.join(base, "tmp")
            os.mkdir(workdir)
            os.mkdir(tmp)
            write_files(workdir, job)
            run = {
                "entry": entry,
                "env": forked_env(scrubbed_env(workdir, tmp)),
                "cwd": workdir,
                "rlimits": rlimits(job.limits, per_uid=False),
            }
            spare = self._spare()
            try:
                return self._spawn(job, self._forked(run, spare), started)
            finally:
                spare.discard()
        except OSError as exc:
            raise SandboxResourceError(f"cannot prepare the working directory: {exc}") from exc
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def _spare(self) -> Spare:
        if self._server is None:
            raise SandboxError("this sandbox has no fork server")
        return self._server.take()

    def _forked(self, run: dict[str, Any], spare: Spare) -> Launcher:
        server = self._server
        if server is None:
            raise SandboxError("this sandbox has no fork server")

        def launch(stdio: tuple[int, int, int]) -> Started:
            # A forked run starts with the server's mappings (shared, copy-on-write):
            # its address-space limit counts from there, as a fresh one counts from
            # an empty interpreter. The cgroup still caps the memory the run uses.
            base = server.address_space
            limits = [(k, v + base if k == resource.RLIMIT_AS else v) for k, v in run["rlimits"]]
            return _Forked(spare.start({**run, "rlimits": limits}, stdio))

        return launch

    def _execute_jailed(
        self, jail: Jail, job: Job, started: float, entry: Entry | None = None
    ) -> ExecResult:
        if entry is not None:
            return self._execute_forked(job, started, entry)
        netns = jail.netns.take()
        cgroup = self._cgroups.create(job.limits) if self._cgroups else None
        try:
            with self._uids.lease() as uid:
                env = scrubbed_env(WORKDIR, "/tmp")
                limits = rlimits(job.limits, per_uid=True)
                join = cgroup.join if cgroup else None
                launch = _popen(job, "/", env, jail.preexec(job, uid, limits, netns, join))
                result = self._spawn(job, launch, started)
            return _with_oom(result, cgroup)
        finally:
            if netns is not None:
                os.close(netns)
            if cgroup is not None:
                cgroup.remove()

    def _execute_forked(self, job: Job, started: float, entry: Entry) -> ExecResult:
        """A jailed run in a spare of the fork server (PID 1 of its own namespaces)."""
        spare = self._spare()
        try:
            if spare.cgroup is not None:
                spare.cgroup.limit(job.limits, RELAYS)
            with self._uids.lease() as uid:
                run: dict[str, Any] = {"entry": entry, "job": job, "uid": uid}
                run["env"] = forked_env(scrubbed_env(WORKDIR, "/tmp"))
                run["rlimits"] = rlimits(job.limits, per_uid=True)
                result = self._spawn(job, self._forked(run, spare), started)
            return _with_oom(result, spare.cgroup)
        except OSError as exc:
            raise SandboxResourceError(f"cannot limit the run's cgroup: {exc}") from exc
        finally:
            spare.discard()
            if spare.cgroup is not None and self._server is not None:
                self._server.finished(spare.cgroup)

    def _spawn(self, job: Job, launch: Launcher, started: float) -> ExecResult:
        limits = job.limits
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            proc = launch((in_r, out_w, err_w))
        except (OSError, subprocess.SubprocessError) as exc:
            os.close(err_w)
            err_w = -1
            cause = _drain(err_r)
            for fd in (in_w, out_r, err_r):
                os.close(fd)
            if not isinstance(exc, OSError):  # the set-up before exec failed: ours, not theirs
                raise SandboxError(f"could not start the sandboxed process: {exc} {cause}") from exc
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            return ExecResult(code, "", f"cannot execute {job.command[0]!r}: {exc}")
        except BaseException:
            for fd in (in_w, out_r, err_r):
                os.close(fd)
            raise
        finally:
            for fd in (in_r, out_w, err_w):
                if fd >= 0:
                    os.close(fd)
        try:
            buffer = CappedBuffer(limits.output_bytes)
            streams = {"stdout": out_r, "stderr": err_r}
            deadline = started + limits.timeout_s
            timed_out = pump(streams, in_w, job.stdin or b"", buffer, deadline, proc.kill)
            if not timed_out:  # the pipes are closed; the program may still be running
                timed_out = proc.wait(max(0.0, deadline - time.monotonic())) is None
            proc.kill()  # nothing of the run outlives it, even a child that kept no pipe open
            status = proc.wait(None)
        finally:
            proc.close()
        code = -signal.SIGKILL if status is None else status
        stderr = buffer.text("stderr")
        if isinstance(proc, _Forked) and code == SETUP_FAILED and SETUP_MARK in stderr:
            raise SandboxError(f"could not start the sandboxed process: {stderr.strip()[-500:]}")
        return ExecResult(
            exit_code=code if code >= 0 else 128 - code,
            stdout=buffer.text("stdout"),
            stderr=stderr,
            timed_out=timed_out,
            output_truncated=buffer.truncated,
            duration_s=time.monotonic() - started,
        )


class Started(Protocol):
    """A started run: killed as a group, waited for (None: still running at the timeout)."""

    def kill(self) -> None: ...

    def wait(self, timeout: float | None) -> int | None: ...

    def close(self) -> None: ...


Launcher = Callable[[tuple[int, int, int]], Started]


class _Popened:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def kill(self) -> None:
        # The session leader is PID 1's parent in namespace mode: its death
        # takes the whole PID namespace with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def wait(self, timeout: float | None) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        pass


class _Forked:
    """A run in the fork server's hands; a server lost mid-run raises ``ForkServerLost``."""

    def __init__(self, run: ForkedRun) -> None:
        self.run = run

    def kill(self) -> None:
        self.run.kill()

    def wait(self, timeout: float | None) -> int | None:
        return self.run.wait(timeout)

    def close(self) -> None:
        self.run.close()


def _popen(job: Job, cwd: str, env: dict[str, str], preexec: Callable[[], None]) -> Launcher:
    def launch(stdio: tuple[int, int, int]) -> Started:
        stdin, stdout, stderr = stdio
        proc = subprocess.Popen(
            resolve_command(job.command),
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=preexec,
            close_fds=True,
        )
        return _Popened(proc)

    return launch


def _with_oom(result: ExecResult, cgroup: RunCgroup | None) -> ExecResult:
    if cgroup is not None and cgroup.oom_killed():
        return dataclasses.replace(result, oom_killed=True)
    return result


def _drain(fd: int, limit: int = 4096) -> str:
    """What a failed set-up wrote to the run's stderr pipe (without blocking)."""
    os.set_blocking(fd, False)
    try:
        return os.read(fd, limit).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _discard_jail(jail: Jail, root: str) -> None:
    jail.close()
    with contextlib.suppress(OSError):
        os.rmdir(root)


class _UidAllocator:
    """Hands out a distinct unprivileged uid per concurrent run (RLIMIT_NPROC is per uid)."""

    def __init__(self, size: int = 4096) -> None:
        # A random block per sandbox: two sandboxes (or processes) rarely share a uid,
        # and if they do, their runs still cannot see each other (separate namespaces).
        base = 1_000_000 + secrets.randbelow(500_000) * size
        self._free = list(range(base + size - 1, base - 1, -1))
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def lease(self) -> Iterator[int]:
        with self._lock:
            if not self._free:
                raise SandboxResourceError("too many concurrent runs (no free sandbox uid)")
            uid = self._free.pop()
        try:
            yield uid
        finally:
            with self._lock:
                self._free.insert(0, uid)
