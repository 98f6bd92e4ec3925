"""Linux namespaces for ``ProcessSandbox``: a private, read-only root and a dead-end network.

``Jail.preexec`` runs in the forked child before ``exec`` (as root). It
unshares mount, PID, network, IPC and UTS namespaces and forks PID 1 of the
new PID namespace, which forks the program as PID 2 and exits when it does
(then the kernel kills every process left in the namespace). PID 1 builds
a new root on a tmpfs from read-only binds of the
system directories and the interpreter's prefix, mounts size-limited tmpfs at
``/sandbox`` (holding the job's files) and ``/tmp``, pivots into it, applies
rlimits and drops to an unprivileged uid with no capabilities and
no-new-privileges. Nothing else of the host file system is visible.

The fork server takes the same steps in another order (``fork_init``,
``unshare_ahead``, ``prepare``, then ``start`` with the job): everything
but the job's ``/sandbox`` is made before the job is known, in namespaces
and on file systems no other run ever uses.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import queue
import resource
import signal
import sys
import threading
from collections.abc import Callable

from sipdo.errors import SandboxUnavailableError
from sipdo.sandbox.base import Job

_libc = ctypes.CDLL(None, use_errno=True)
_NEWNS, _NEWUTS, _NEWIPC, _NEWPID, _NEWNET = 0x20000, 0x4000000, 0x8000000, 0x20000000, 0x40000000
_NEWCGROUP = 0x2000000
NAMESPACES = _NEWNS | _NEWUTS | _NEWIPC | _NEWCGROUP  # besides PID and network
_RDONLY, _NOSUID, _NODEV, _NOEXEC, _REMOUNT = 1, 2, 4, 8, 32
_BIND, _REC, _PRIVATE = 4096, 16384, 1 << 18
_MNT_DETACH = 2
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(platform.machine())

WORKDIR = "/sandbox"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "passwd", "group",
    "hosts", "localtime", "mime.types", "ssl",
)  # fmt: skip
DEVICES = ("null", "zero", "full", "random", "urandom")


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(src: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    result = _libc.mount(
        src.encode() if src else None,
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    _check(result, f"mount {target}")


def host_python() -> str:
    """``sys.executable`` with its directory's symbolic links resolved (the name is kept).

    The jail binds real paths only, so a venv reached through a link (``.venv``
    -> a directory kept elsewhere) must be run by its real path. The file name
    itself stays: a venv's ``bin/python`` is a link to the base interpreter,
    and Python finds the venv (``pyvenv.cfg``) from the name it was started as.
    """
    directory, name = os.path.split(sys.executable)
    return os.path.join(os.path.realpath(directory), name)


def interpreter_dirs() -> list[str]:
    """Directories the host interpreter needs, outside the system directories."""
    found: list[str] = []
    for path in (sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.realpath(sys.executable)):
        path = os.path.realpath(path)
        if os.path.isfile(path):
            path = os.path.dirname(os.path.dirname(path))
        if any(path == d or path.startswith(d + "/") for d in (*SYSTEM_DIRS, *found)):
            continue
        found.append(path)
    return found


class Jail:
    """Everything ``preexec`` needs, computed once in the parent (no lookups in the child)."""

    def __init__(self, root: str, netns_ahead: int = 4) -> None:
        if os.geteuid() != 0:
            raise SandboxUnavailableError("namespaces need root (euid 0)")
        if _PIVOT_ROOT is None:
            raise SandboxUnavailableError(f"pivot_root unknown on {platform.machine()}")
        self.root = root
        self.binds = [d for d in (*SYSTEM_DIRS, *interpreter_dirs()) if os.path.lexists(d)]
        self.etc = [f for f in ETC_FILES if os.path.exists(os.path.join("/etc", f))]
        self.netns = NetnsPool(netns_ahead)
        self._own_pidns: int | None = None

    def close(self) -> None:
        self.netns.close()
        if self._own_pidns is not None:
            os.close(self._own_pidns)

    def preexec(
        self,
        job: Job,
        uid: int,
        limits: list[tuple[int, int]],
        netns: int | None,
        join: Callable[[], None] | None = None,
    ) -> Callable[[], None]:
        """The function ``Popen`` runs in the child before exec.

        ``netns`` is an fd of a fresh, unused network namespace (see
        ``NetnsPool``), or None to create one here (about 20 ms). ``join``
        (moving into the run's cgroup) runs first, so every process counts.
        """

        def run() -> None:
            try:
                setup()
            except BaseException as exc:
                # Popen only reports "Exception occurred in preexec_fn"; stderr (already
                # the run's pipe here) carries the real cause to the parent's message.
                with contextlib.suppress(OSError):
                    os.write(2, f"sipdo jail set-up failed: {exc!r}\n".encode())
                raise

        def setup() -> None:
            if join is not None:
                join()
            flags = NAMESPACES | _NEWPID
            if netns is None:
                flags |= _NEWNET
            else:
                _check(_libc.setns(netns, _NEWNET), "setns")
            _check(_libc.unshare(flags), "unshare")
            child = os.fork()
            if child:
                _relay(child)  # outside the namespace; never returns
            # Should the outer relay die (timeout kill), so does PID 1 and the namespace.
            # (The host's process-group kill covers the instant before this line.)
            _check(_libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
            self.init(job, uid, limits)

        return run

    def fork_init(self) -> int:
        """Fork a child that is PID 1 of a new PID namespace; this process stays in its own.

        The fork server's way to a run's PID 1 without an outer relay process:
        the child starts in the namespace instead of unsharing and forking again.
        """
        if self._own_pidns is None:
            self._own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        _check(_libc.unshare(_NEWPID), "unshare pid")
        pid = -1
        try:
            pid = os.fork()
        finally:
            if pid != 0:  # in this process, a failed fork included: the next child too
                _check(_libc.setns(self._own_pidns, _NEWPID), "setns pid")
        return pid

    def init(self, job: Job, uid: int, limits: list[tuple[int, int]]) -> None:
        """As PID 1 of the run's namespaces: build the root, fork the program (returns in it).

        PID 1 stays a plain init (reaps, mirrors the program's end): the program
        itself runs as PID 2 so signals behave as usual for it.
        """
        self._build_root(job.limits.disk_mb)
        self._fork_program()
        self.start(job, uid, limits, resize=False)

    def unshare_ahead(self) -> None:
        """As PID 1 of a new PID namespace, before the job is known: its other namespaces.

        Called after joining the run's cgroup (the cgroup namespace's root is then
        the run's). The network namespace is new and empty, as ``NetnsPool``'s.
        """
        _check(_libc.unshare(NAMESPACES | _NEWNET), "unshare")

    def prepare(self) -> None:
        """``init`` before the job is known: the root, and the program's process (returns in it).

        The scratch file systems get a placeholder size that ``start`` sets to the job's.
        """
        self._build_root(1)
        self._fork_program()

    def start(self, job: Job, uid: int, limits: list[tuple[int, int]], *, resize: bool) -> None:
        """In the program's process: the job's ``/sandbox`` and scratch sizes; drop to ``uid``."""
        scratch = f"size={job.limits.disk_mb}m"
        if resize:
            for path in ("/tmp", "/dev/shm"):
                _mount(None, path, None, _REMOUNT | _NOSUID | _NODEV, scratch)
        _mount("sipdo", WORKDIR, "tmpfs", _NOSUID | _NODEV, f"{scratch},mode=0755")
        _write_files(WORKDIR, job, uid)
        os.chdir(WORKDIR)
        with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")  # a host out of memory kills the run first, not its server
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        # Last: the address-space limit may be below what this forked copy maps.
        for which, value in limits:
            resource.setrlimit(which, (value, value))

    def _fork_program(self) -> None:
        _libc.sethostname(b"sandbox", 7)
        child = os.fork()
        if child:
            _relay(child)

    def _build_root(self, disk_mb: int) -> None:
        """The read-only root, with empty ``/tmp`` and ``/dev/shm`` of ``disk_mb`` each."""
        root = self.root
        _mount(None, "/", None, _REC | _PRIVATE)
        _mount("sipdo", root, "tmpfs", _NOSUID | _NODEV, "size=4m,mode=0755")
        scratch = f"size={disk_mb}m,mode=1777"
        # /tmp first: a bound directory may live under the host's /tmp (a checkout
        # or venv there) and must sit on top of the run's /tmp, not be hidden by it.
        os.makedirs(root + "/tmp")
        _mount("sipdo", root + "/tmp", "tmpfs", _NOSUID | _NODEV, scratch)
        for src in self.binds:
            target = root + src
            if os.path.islink(src):
                os.symlink(os.readlink(src), target)
                continue
            os.makedirs(target, exist_ok=True)
            _bind_readonly(src, target)
        os.makedirs(root + "/etc")
        for name in self.etc:
            _bind_file_or_dir("/etc/" + name, f"{root}/etc/{name}")
        os.makedirs(root + "/dev")
        for name in DEVICES:
            _bind_file_or_dir("/dev/" + name, f"{root}/dev/{name}")
        for name, fd in (("stdin", "/0"), ("stdout", "/1"), ("stderr", "/2"), ("fd", "")):
            os.symlink("/proc/self/fd" + fd, f"{root}/dev/{name}")
        for path in ("/dev/shm", WORKDIR, "/proc", "/.old"):
            os.makedirs(root + path)
        _mount("sipdo", root + "/dev/shm", "tmpfs", _NOSUID | _NODEV, scratch)
        _mount("proc", root + "/proc", "proc", _NOSUID | _NODEV | _NOEXEC)
        os.chdir(root)
        _check(_libc.syscall(_PIVOT_ROOT, b".", b".old"), "pivot_root")
        _check(_libc.umount2(b"/.old", _MNT_DETACH), "umount old root")
        os.rmdir("/.old")
        _mount(None, "/", None, _REMOUNT | _RDONLY | _NOSUID | _NODEV)


class NetnsPool:
    """Fresh, empty network namespaces made ahead by a background thread; each used once.

    Creating a network namespace costs about 20 ms, the largest part of a run's
    overhead; a thread (network namespaces are per thread) unshares ahead and
    keeps an fd of each one until a run takes it. ``take`` never waits.
    """

    def __init__(self, size: int) -> None:
        self._ready: queue.Queue[int] = queue.Queue(maxsize=max(1, size))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="sipdo-netns", daemon=True)
        if size > 0:
            self._thread.start()

    def _fill(self) -> None:
        while not self._stop.is_set():
            if _libc.unshare(_NEWNET) != 0:
                return  # not permitted: runs fall back to unsharing themselves
            fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            while not self._stop.is_set():
                try:
                    self._ready.put(fd, timeout=0.5)
                    break
                except queue.Full:
                    continue
            else:
                os.close(fd)

    def take(self) -> int | None:
        """An fd of an unused namespace (the caller closes it), or None if none is ready."""
        try:
            return self._ready.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        while (fd := self.take()) is not None:
            os.close(fd)


def _bind_readonly(src: str, target: str) -> None:
    _mount(src, target, None, _BIND | _REC)
    _mount(None, target, None, _REMOUNT | _BIND | _RDONLY | _NOSUID | _NODEV)


def _bind_file_or_dir(src: str, target: str) -> None:
    if os.path.isdir(src):
        os.makedirs(target)
    else:
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    _mount(src, target, None, _BIND | _REC)
    _mount(None, target, None, _REMOUNT | _BIND | _RDONLY | _NOSUID)


def _write_files(root: str, job: Job, uid: int) -> None:
    os.chown(root, uid, uid)
    for directory in sorted(job.directories):
        os.mkdir(os.path.join(root, directory), 0o755)
        os.chown(os.path.join(root, directory), uid, uid)
    for name, content in job.files.items():
        path = os.path.join(root, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fchown(fd, uid, uid)
        finally:
            os.close(fd)


def _relay(child: int) -> None:
    """Wait for ``child`` (reaping any other orphan) and exit as it did; never returns."""
    os.closerange(0, 1 << 16)  # incl. Popen's error pipe, so Popen() returns at exec
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
        if pid == child:
            break
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))
