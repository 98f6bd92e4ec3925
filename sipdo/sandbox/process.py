"""``ProcessSandbox``: the fallback backend, a local child process under rlimits.

``command[0] == "python"`` is the host interpreter running sipdo
(``sys.executable``), so whatever it has installed (pytest, Hypothesis) is
importable in the sandbox too.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from sipdo.errors import SandboxResourceError
from sipdo.sandbox._capture import CappedBuffer, pump
from sipdo.sandbox.base import ExecResult, Job, Limits, Sandbox

BASIC_ISOLATION = frozenset({"env", "wall_time", "output", "memory", "cpu_time"})

_PATH = "/usr/local/bin:/usr/bin:/bin"


def scrubbed_env(home: str, tmp: str) -> dict[str, str]:
    """The whole environment a sandboxed program sees: nothing of the caller's."""
    return {
        "PATH": f"{os.path.dirname(sys.executable)}:{_PATH}",
        "HOME": home,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONIOENCODING": "utf-8",
    }


def rlimits(limits: Limits) -> list[tuple[int, int]]:
    """(resource, value) pairs applied to the child; soft == hard so it cannot raise them."""
    cpu = max(1, int(limits.timeout_s * limits.cpus) + 1)
    return [
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_AS, limits.memory_mb * 1024 * 1024),
        (resource.RLIMIT_FSIZE, limits.disk_mb * 1024 * 1024),
        (resource.RLIMIT_NPROC, limits.pids),
        (resource.RLIMIT_NOFILE, 256),
        (resource.RLIMIT_CORE, 0),
    ]


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
        fd = os.open(os.path.join(root, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)


def resolve_command(command: tuple[str, ...]) -> list[str]:
    """Map ``python`` to the host interpreter; other names are looked up on PATH."""
    if command[0] == "python":
        return [sys.executable, *command[1:]]
    return list(command)


class ProcessSandbox(Sandbox):
    """Runs each job as a child process in a fresh temporary directory.

    Enforces (``isolation``): a scrubbed environment, rlimits on CPU time,
    address space, file size, processes and open files, a wall-clock timeout
    that kills the whole process group, and capped output.
    """

    kind = "process"
    isolation = BASIC_ISOLATION

    def __init__(self, *, limits: Limits | None = None, max_concurrency: int = 2) -> None:
        super().__init__(limits=limits, max_concurrency=max_concurrency)

    def _execute(self, job: Job) -> ExecResult:
        started = time.monotonic()
        workdir = tempfile.mkdtemp(prefix="sipdo-run-")
        try:
            write_files(workdir, job)
            tmp = os.path.join(workdir, ".tmp")
            os.mkdir(tmp)
            return self._spawn(job, workdir, tmp, started)
        except OSError as exc:
            raise SandboxResourceError(f"cannot prepare the working directory: {exc}") from exc
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _spawn(self, job: Job, workdir: str, tmp: str, started: float) -> ExecResult:
        limits = job.limits
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            proc = subprocess.Popen(
                resolve_command(job.command),
                cwd=workdir,
                env=scrubbed_env(workdir, tmp),
                stdin=in_r,
                stdout=out_w,
                stderr=err_w,
                start_new_session=True,
                preexec_fn=_apply_rlimits(rlimits(limits)),
                close_fds=True,
            )
        except OSError as exc:
            for fd in (in_w, out_r, err_r):
                os.close(fd)
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            return ExecResult(code, "", f"cannot execute {job.command[0]!r}: {exc}")
        finally:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
        buffer = CappedBuffer(limits.output_bytes)

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        streams = {"stdout": out_r, "stderr": err_r}
        timed_out = pump(streams, in_w, job.stdin or b"", buffer, started + limits.timeout_s, kill)
        kill()  # nothing of the run outlives it, even a child that kept no pipe open
        code = proc.wait()
        return ExecResult(
            exit_code=code if code >= 0 else 128 - code,
            stdout=buffer.text("stdout"),
            stderr=buffer.text("stderr"),
            timed_out=timed_out,
            output_truncated=buffer.truncated,
            duration_s=time.monotonic() - started,
        )
