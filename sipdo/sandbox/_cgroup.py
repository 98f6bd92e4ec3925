"""Per-run cgroups for ``ProcessSandbox``: memory (no swap), CPU quota and process count.

Each run gets a child cgroup of the caller's own cgroup (so the caller's
limits still hold), on cgroup v1 (memory, cpu, pids hierarchies) or v2. The
run's first process joins it before anything else happens; its limits bind
every process of the run together, which rlimits cannot. A fork server's
run is prepared ahead (see ``forkserver``): its cgroup is made, and joined,
before the job is known (a join waits ~12 ms on cgroup v1, for the kernel's
RCU), and gets the job's limits before the job is handed over. When the hierarchy
cannot be written (not root, no delegation), ``CgroupFactory.probe`` says why
and the backend does not claim ``memory`` / ``cpu_time``.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid

from sipdo.errors import SandboxUnavailableError
from sipdo.sandbox.base import Limits

ROOT = "/sys/fs/cgroup"
_PERIOD_US = 100_000


def _own_paths() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    return paths


def _write(path: str, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


class RunCgroup:
    """The cgroup directories of one run; ``join`` is safe to call from a forked child."""

    def __init__(self, dirs: list[str], oom_file: str, v2: bool) -> None:
        self.dirs = dirs
        self.oom_file = oom_file
        self.v2 = v2
        self.procs = [os.path.join(d, "cgroup.procs") for d in dirs]
        self._written: dict[str, str] = {}

    def join(self) -> None:
        """Move the calling process into the run's cgroups (children follow)."""
        pid = str(os.getpid())
        for path in self.procs:
            _write(path, pid)

    def open_procs(self) -> list[int]:
        """Write-only fds of the ``cgroup.procs`` files, for a process to ``join_fds`` later."""
        fds: list[int] = []
        try:
            for path in self.procs:
                fds.append(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        return fds

    def limit(self, limits: Limits, relays: int) -> None:
        """Set the run's memory (no swap), CPU quota and process count (+ ``relays``).

        Values already written are not written again (a write can take
        milliseconds on cgroup v1).
        """
        memory = str(limits.memory_mb * 1024 * 1024)
        quota = str(max(1000, int(limits.cpus * _PERIOD_US)))
        pids = str(limits.pids + relays)
        if self.v2:
            (path,) = self.dirs
            self._set(os.path.join(path, "memory.max"), memory)
            self._set(os.path.join(path, "memory.swap.max"), "0")
            self._set(os.path.join(path, "cpu.max"), f"{quota} {_PERIOD_US}")
            self._set(os.path.join(path, "pids.max"), pids)
            return
        memory_dir, cpu_dir, pids_dir = self.dirs
        ram = os.path.join(memory_dir, "memory.limit_in_bytes")
        swap = os.path.join(memory_dir, "memory.memsw.limit_in_bytes")
        # v1 keeps memory <= memory + swap at every write: raise the sum first, lower it last.
        raising = int(self._written.get(ram, "0")) < int(memory)
        for path in (swap, ram) if raising else (ram, swap):
            with contextlib.suppress(OSError) if path == swap else contextlib.nullcontext():
                self._set(path, memory)  # (memsw is absent without swap accounting)
        self._set(os.path.join(cpu_dir, "cpu.cfs_period_us"), str(_PERIOD_US))
        self._set(os.path.join(cpu_dir, "cpu.cfs_quota_us"), quota)
        self._set(os.path.join(pids_dir, "pids.max"), pids)

    def _set(self, path: str, value: str) -> None:
        if self._written.get(path) != value:
            _write(path, value)
            self._written[path] = value

    def oom_killed(self) -> bool:
        try:
            with open(self.oom_file) as handle:
                fields = dict(line.split() for line in handle if line.strip())
        except (OSError, ValueError):
            return False
        return int(fields.get("oom_kill", "0")) > 0

    def remove(self) -> None:
        """Remove the directories, waiting briefly for killed processes to be gone."""
        deadline = time.monotonic() + 2.0
        for path in self.dirs:
            while True:
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break  # left empty-to-be; harmless, tiny
                    time.sleep(0.01)


def join_fds(fds: list[int]) -> None:
    """Move the calling process into the cgroups whose ``cgroup.procs`` fds these are; close them.

    "0" names the writer itself: its pid as it sees it may be of another PID namespace.
    """
    for fd in fds:
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CgroupFactory:
    """Creates ``RunCgroup``s under this process's cgroup, v1 or v2."""

    def __init__(self) -> None:
        if os.geteuid() != 0:
            raise SandboxUnavailableError("cgroups need root")
        own = _own_paths()
        self.v2 = os.path.exists(os.path.join(ROOT, "cgroup.controllers"))
        if self.v2:
            self.bases = {"": ROOT + own.get("", "/")}
        else:
            self.bases = {}
            for name, mount in (("memory", "memory"), ("cpu", "cpu"), ("pids", "pids")):
                for candidate in (mount, "cpu,cpuacct"):
                    if os.path.isdir(os.path.join(ROOT, candidate)) and name in own:
                        self.bases[name] = os.path.join(ROOT, candidate) + own[name]
                        break
            missing = {"memory", "cpu", "pids"} - self.bases.keys()
            if missing:
                raise SandboxUnavailableError(f"cgroup v1 controllers missing: {sorted(missing)}")
        self.reap()

    def reap(self) -> int:
        """Remove the empty run cgroups of owners that are dead (SIGKILLed); return how many.

        A run's cgroup is named after the process that made it and removed when
        the run ends; an owner killed outright leaves those of its runs in
        flight. A cgroup of a live owner, or one still holding a process, stays.
        """
        removed = 0
        for base in self.bases.values():
            try:
                names = os.listdir(base)
            except OSError:
                continue
            for name in names:
                parts = name.split("-")
                if len(parts) != 3 or parts[0] != "sipdo" or not parts[1].isdigit():
                    continue
                if _alive(int(parts[1])):
                    continue
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(base, name))
                    removed += 1
        return removed

    def create(self, limits: Limits | None = None, relays: int = 2) -> RunCgroup:
        """A new run cgroup, with ``limits`` set if given (else the caller sets them later)."""
        name = f"sipdo-{os.getpid()}-{uuid.uuid4().hex[:16]}"
        dirs = [os.path.join(base, name) for base in self.bases.values()]
        oom = "memory.events" if self.v2 else "memory.oom_control"
        cgroup = RunCgroup(dirs, os.path.join(dirs[0], oom), self.v2)
        try:
            for path in dirs:
                os.mkdir(path)
            if limits is not None:
                cgroup.limit(limits, relays)
        except OSError as exc:
            RunCgroup([d for d in dirs if os.path.isdir(d)], "", self.v2).remove()
            raise SandboxUnavailableError(f"cannot create a cgroup: {exc}") from exc
        return cgroup

    def probe(self) -> None:
        """Create and remove one cgroup; raise ``SandboxUnavailableError`` if that fails."""
        self.create(Limits()).remove()
