"""The fork server inside a Docker sandbox container (standard library only; sent as source).

PID 2 of a long-lived hardened container (tini is PID 1), uid 65534 like the
runs. It preloads pytest and Hypothesis, makes itself non-dumpable (a run of
the same uid can then neither ptrace it nor open its ``/proc`` descriptors),
reports ``R`` with its anonymous memory, and serves one run at a time from
its stdin. Each run is a forked child: a new session, fds 0-2 on pipes,
every other descriptor closed, ``/sandbox`` holding only the job's files;
``python`` commands run in the child (``_zygote.run_python``), others are
exec'ed. The server relays the output as frames on its stdout, capped, and
ends the run at its deadline. After every run it kills every process it may
signal (``kill(-1)``: everything of the run, daemons included; not tini, not
itself), empties ``/sandbox``, ``/tmp`` and ``/dev/shm``, and looks for
anything left (processes, SysV IPC objects, POSIX message queues, files it
could not remove): a run that left any is *tainted*, the server says so and
exits, and the host replaces the container. So each run starts in a clean
container whose only other process is an idle server; the container
boundary protects the host as in the fresh mode.

Frames on stdout: 1 byte kind, 4 bytes big-endian length, payload. ``R``
ready (JSON), ``o`` / ``e`` output, ``x`` the run's end (JSON). A job on
stdin: 8 bytes header length, JSON header (``argv``, ``tar``, ``stdin``,
``timeout_s``, ``output_bytes``), the tar of the files, the stdin bytes.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import select
import shutil
import signal
import struct
import sys
import tarfile
import time
from typing import Any, NoReturn

try:
    from sipdo.sandbox import _zygote
except ImportError:  # inside the container: the boot line put it in sys.modules
    import _sipdo_zygote as _zygote  # type: ignore[import-not-found, no-redef]

WORKDIR = "/sandbox"
SCRATCH = (WORKDIR, "/tmp", "/dev/shm")
IDLE_EXIT_S = 3600.0
GRACE_S = 2.0
_PR_SET_DUMPABLE = 4


def serve() -> NoReturn:
    """Preload, say ready, then serve runs from stdin until EOF, an idle hour or a taint."""
    missing = _zygote.preload()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    os.chdir(WORKDIR)
    send(b"R", json.dumps({"missing": missing, "anon": anon_bytes()}).encode())
    while True:
        if not select.select([0], [], [], IDLE_EXIT_S)[0]:
            os._exit(0)
        head = read_exact(8)
        if head is None:
            os._exit(0)
        job = json.loads(read_exact(int.from_bytes(head, "big")) or b"{}")
        archive = read_exact(job["tar"]) if job["tar"] else b""
        stdin = read_exact(job["stdin"]) if job["stdin"] else b""
        if archive is None or stdin is None:
            os._exit(0)
        end = run_one(job, archive, stdin, libc)
        send(b"x", json.dumps(end).encode())
        if end["tainted"]:
            os._exit(0)


def run_one(job: dict[str, Any], archive: bytes, stdin: bytes, libc: Any) -> dict[str, Any]:
    ooms = oom_kills()
    if archive:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(WORKDIR)
    argv = job["argv"]
    entry = _zygote.python_entry(argv[1:]) if argv[0] in ("python", "python3") else None
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        child(argv, entry, (in_r, out_w, err_w), libc)
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    status, timed_out, truncated = relay(pid, in_w, out_r, err_r, stdin, job)
    if timed_out or status is None:
        code = 137
    else:
        code = os.waitstatus_to_exitcode(status)
        code = code if code >= 0 else 128 - code
    return {
        "exit_code": code,
        "timed_out": timed_out,
        "oom_killed": oom_kills() > ooms,
        "output_truncated": truncated,
        "tainted": clean_up(),
    }


def child(argv: list[str], entry: Any, stdio: tuple[int, int, int], libc: Any) -> NoReturn:
    try:
        _zygote.reset_signals()
        os.setsid()
        for fd, target in zip(stdio, (0, 1, 2), strict=True):
            os.dup2(fd, target)
        os.closerange(3, 1 << 16)
        libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
        with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")  # the OOM killer takes the run, never the idle server
    except BaseException as exc:
        _zygote.setup_failed(exc)
    if entry is not None:
        _zygote.run_python(entry)
    command = ["python3", *argv[1:]] if argv[0] == "python" else argv
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.write(2, f"cannot execute {argv[0]!r}: {exc}\n".encode())
        os._exit(127 if isinstance(exc, FileNotFoundError) else 126)


def relay(
    pid: int, in_w: int, out_r: int, err_r: int, data: bytes, job: dict[str, Any]
) -> tuple[int | None, bool, bool]:
    """Feed stdin, frame the output (capped), end the run at its deadline or its main's exit.

    Returns the main process's wait status (None if it never ended), whether
    the deadline ended the run, and whether output was cut at the cap.
    """
    deadline = time.monotonic() + float(job["timeout_s"])
    room = int(job["output_bytes"])
    truncated = timed_out = False
    status: int | None = None
    reading = {out_r: b"o", err_r: b"e"}
    view = memoryview(data)
    if view:
        os.set_blocking(in_w, False)
    else:
        os.close(in_w)
        in_w = -1
    ended_at: float | None = None  # when everything of the run was killed
    while reading or status is None:
        now = time.monotonic()
        if ended_at is None and status is None and now >= deadline:
            timed_out = True
            kill_all()
            ended_at = now
        if ended_at is not None and now - ended_at > GRACE_S:
            break  # nothing should hold a pipe after kill_all; do not wait for it forever
        writers = [in_w] if in_w >= 0 else []
        ready_r, ready_w, _ = select.select(list(reading), writers, [], 0.05)
        if ready_w:
            try:
                view = view[os.write(in_w, view[:65536]) :]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                view = view[len(view) :]
            if not view:
                os.close(in_w)
                in_w = -1
        for fd in ready_r:
            chunk = os.read(fd, 65536)
            if not chunk:
                del reading[fd]
                os.close(fd)
                continue
            kept = chunk[: max(0, room)]
            room -= len(kept)
            if kept:
                send(reading[fd], kept)
            if len(kept) < len(chunk):
                truncated = True
        if status is None:
            done, got = os.waitpid(pid, os.WNOHANG)
            if done:
                status = got
                if ended_at is None:
                    kill_all()  # nothing of the run outlives its main process
                    ended_at = time.monotonic()
    for fd in reading:
        os.close(fd)
    if in_w >= 0:
        os.close(in_w)
    if status is None:
        kill_all()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    reap()
    return status, timed_out, truncated


def kill_all() -> None:
    """SIGKILL every process this uid may signal except tini (PID 1) and the server itself."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGKILL)


def reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def clean_up() -> bool:
    """Empty the scratch directories and look for anything a run left; True if tainted."""
    tainted = False
    for directory in SCRATCH:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            except OSError:
                tainted = True
    for kind in ("shm", "msg", "sem"):
        try:
            with open(f"/proc/sysvipc/{kind}") as handle:
                if len(handle.read().strip().splitlines()) > 1:
                    tainted = True
        except OSError:
            pass
    with contextlib.suppress(OSError):
        if os.listdir("/dev/mqueue"):
            tainted = True
    return tainted or bool(left_processes())


def left_processes(wait_s: float = 1.0) -> list[int]:
    """Live processes other than tini and the server (killed ones may take a moment)."""
    deadline = time.monotonic() + wait_s
    while True:
        left = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in (1, os.getpid()):
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    state = handle.read().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state not in ("Z", "X"):
                left.append(int(entry))
        if not left or time.monotonic() > deadline:
            return left
        kill_all()
        reap()
        time.sleep(0.02)


def anon_bytes() -> int:
    """Anonymous memory charged to the container's cgroup (page cache excluded)."""
    for path, keys in (
        ("/sys/fs/cgroup/memory.stat", ("anon",)),
        ("/sys/fs/cgroup/memory/memory.stat", ("total_rss", "rss")),
    ):
        try:
            with open(path) as handle:
                fields = dict(line.split() for line in handle if line.strip())
        except (OSError, ValueError):
            continue
        for key in keys:
            if key in fields:
                return int(fields[key])
    return 0


def oom_kills() -> int:
    for path in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        try:
            with open(path) as handle:
                fields = dict(line.split() for line in handle if line.strip())
            return int(fields.get("oom_kill", "0"))
        except (OSError, ValueError):
            continue
    return 0


def send(kind: bytes, payload: bytes) -> None:
    data = memoryview(kind + struct.pack(">I", len(payload)) + payload)
    while data:
        data = data[os.write(1, data) :]


def read_exact(n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(0, min(n - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


if __name__ == "__main__":
    serve()
    sys.exit(0)
