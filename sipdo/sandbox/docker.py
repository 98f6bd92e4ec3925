"""``DockerSandbox``: every run in a fresh, hardened, single-use container.

Each container has no network, a read-only root, size-limited tmpfs at
``/sandbox`` (the working directory) and ``/tmp``, no capabilities,
no-new-privileges, uid 65534, pids / memory (no swap) / CPU limits, no log
driver (output only reaches the attached client, capped while streaming), and
tini as PID 1. A warm pool keeps ``pool_size`` containers created, attached
to and started ahead, each with a small agent waiting on stdin for one job;
a container serves one run and is then removed, so nothing of one run
(processes, files, /tmp, /dev/shm, environment) can be seen by the next.
``pool_size=0`` creates one per run. A run that overruns ``timeout_s`` is
ended by killing its container. Containers carry owner labels; those of dead
owners are reaped when the next ``DockerSandbox`` starts, and an idle agent
exits after an hour. ``command[0] == "python"`` is the image's python3 (with
pytest and Hypothesis importable).
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
import threading
import time
import weakref
from typing import Any

from sipdo.errors import SandboxError, SandboxInputError, SandboxUnavailableError
from sipdo.sandbox._capture import CappedBuffer
from sipdo.sandbox._demux import stream_exec
from sipdo.sandbox._zygote import HASH_SEED
from sipdo.sandbox.base import ISOLATION_VOCABULARY, ExecResult, Job, Limits, Sandbox
from sipdo.sandbox.dockerfork import (
    MAX_RUNS,
    SERVER_HEADROOM_MB,
    RunEnd,
    ServerLost,
    ServerStream,
    job_message,
    memory_limit,
    run_job,
    server_command,
    wait_ready,
)
from sipdo.sandbox.engine import DEFAULT_IMAGE, connect, mapped, reap_stale
from sipdo.sandbox.pool import ContainerPool, PoolKey, Warm

log = logging.getLogger(__name__)

WORKDIR = "/sandbox"
USER = "65534:65534"
ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": WORKDIR,
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONIOENCODING": "utf-8",
}
# PID 2 of every container (tini is PID 1): waits for one job on stdin (an
# 8-byte length, a JSON header, the files as a tar), unpacks it and execs the
# command, which inherits the rest of stdin. Started ahead, so a run pays
# neither the container start nor the interpreter start of this agent.
AGENT = """
import io, json, os, select, sys, tarfile
if not select.select([0], [], [], 3600)[0]:
    sys.exit(125)
def take(n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(0, n - len(buf))
        if not chunk:
            os._exit(125)
        buf += chunk
    return bytes(buf)
job = json.loads(take(int.from_bytes(take(8), "big")))
if job["tar"]:
    with tarfile.open(fileobj=io.BytesIO(take(job["tar"]))) as archive:
        archive.extractall(".")
try:
    os.execvp(job["argv"][0], job["argv"])
except OSError as exc:
    sys.stderr.write(f"cannot execute {job['argv'][0]!r}: {exc}\\n")
    os._exit(127 if isinstance(exc, FileNotFoundError) else 126)
"""


def pack(job: Job) -> bytes:
    """The job's files as an uncompressed tar (directories 0755, files 0644)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(job.directories):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, content in job.files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o644
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def job_payload(job: Job) -> bytes:
    """What the agent reads from stdin: header length, header, tar, then the program's stdin."""
    argv = ["python3", *job.command[1:]] if job.command[0] == "python" else list(job.command)
    archive = pack(job) if job.files else b""
    header = json.dumps({"argv": argv, "tar": len(archive)}).encode()
    return len(header).to_bytes(8, "big") + header + archive + (job.stdin or b"")


def container_config(
    client: Any, image: str, key: PoolKey, runtime: str | None, *, forkserver: bool = False
) -> dict[str, Any]:
    """Keyword arguments of ``api.create_container`` for one hardened sandbox container.

    A fork-server container runs the server instead of the one-job agent, with
    room for it: memory headroom until it is ready (see ``dockerfork``) and one
    more process.
    """
    memory = f"{key.memory_mb + (SERVER_HEADROOM_MB if forkserver else 0)}m"
    size = f"size={key.disk_mb}m"
    host_config = client.api.create_host_config(
        network_mode="bridge" if key.network else "none",
        read_only=True,
        tmpfs={
            WORKDIR: f"rw,exec,nosuid,nodev,{size},uid=65534,gid=65534,mode=0700",
            "/tmp": f"rw,noexec,nosuid,nodev,{size},mode=1777",
        },
        shm_size=f"{key.disk_mb}m",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        pids_limit=key.pids + (2 if forkserver else 1),  # + tini (+ the server)
        mem_limit=memory,
        memswap_limit=memory,
        nano_cpus=int(key.cpus * 1e9),
        ulimits=[{"Name": "nofile", "Soft": 256, "Hard": 256}],
        ipc_mode="private",
        init=True,
        log_config={"Type": "none"},  # output goes only to the attached client
        runtime=runtime,
    )
    return {
        "image": image,
        "command": server_command() if forkserver else ["python3", "-c", AGENT],
        "user": USER,
        "working_dir": WORKDIR,
        "environment": {**ENV, "PYTHONHASHSEED": HASH_SEED} if forkserver else ENV,
        "hostname": "sandbox",
        "stdin_open": True,
        "detach": False,  # with stdin_open: the engine closes stdin when we half-close
        "host_config": host_config,
    }


class DockerSandbox(Sandbox):
    """Runs each job in a hardened container from a warm pool; ``mode`` says how.

    ``mode="fresh"``: every run in its own single-use container (above).
    ``mode="forkserver"`` (what ``"auto"`` picks): each container runs a fork
    server (``_dockerserver``) with pytest and Hypothesis imported, and serves
    runs one at a time, each a forked child; after each run everything of it
    is killed and wiped, and a container with anything left (processes, IPC
    objects, files) is replaced, as is one that dies or has served
    ``MAX_RUNS``. A run whose limits no ready server matches goes to a fresh
    container while a server for them is made (``prewarm`` makes them ahead;
    ``pool_size=0`` makes none). The container flags, and so every claim, are
    the fresh mode's; the memory limit is the run's plus the idle server's
    anonymous memory, and runs have the servers' ``PYTHONHASHSEED=0``. Should
    a container die under a run (its server killed), the run is tried again
    in another, twice, then reported as exit 137; an engine that stops
    answering raises ``SandboxUnavailableError``.
    """

    kind = "docker"
    isolation = ISOLATION_VOCABULARY

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        *,
        limits: Limits | None = None,
        pool_size: int = 2,
        runtime: str | None = None,
        max_concurrency: int | None = None,
        mode: str = "auto",
    ) -> None:
        if mode not in ("auto", "forkserver", "fresh"):
            raise SandboxInputError(f"unknown mode {mode!r}; available: auto, forkserver, fresh")
        super().__init__(limits=limits, max_concurrency=max_concurrency or max(2, pool_size))
        self.mode = "fresh" if mode == "fresh" else "forkserver"
        self.image = image
        self._runtime_id: str | None = None
        self.runtime = runtime
        self.client = connect()
        try:
            with mapped(f"preparing image {image}"):
                self.client.images.get(image)
                if runtime and runtime not in self.client.info().get("Runtimes", {}):
                    raise SandboxUnavailableError(f"the engine has no runtime {runtime!r}")
            reap_stale(self.client)
        except BaseException:
            self.client.close()
            raise
        client = self.client  # the pool must not keep ``self`` alive (see the finalizer)
        forked = self.mode == "forkserver"
        self._fresh_config = lambda key: container_config(client, image, key, runtime)
        self._pool = ContainerPool(
            client,
            lambda key: container_config(client, image, key, runtime, forkserver=forked),
            PoolKey.of(self.limits),
            pool_size,
            prepare=(lambda warm, key: _prepare(client, warm, key)) if forked else None,
        )
        self.instance_id = self._pool.instance  # label value on all its containers
        # Containers are removed even if close() is never called.
        self._finalizer = weakref.finalize(self, self._pool.shutdown)

    def prewarm(self, limits: Limits | None = None, count: int = 1) -> None:
        """Make ``count`` server containers for ``limits`` now (fork-server mode), waiting.

        Runs whose limits no ready server matches go to a fresh container while
        one is made in the background; this makes them ahead instead.
        """
        if self.mode != "forkserver":
            return
        key = PoolKey.of(limits or self.limits)
        made = [self._pool.create(key) for _ in range(count)]
        for warm in made:
            self._pool.give_back(warm, key)

    def runtime_id(self) -> str | None:
        """The image's id (its interpreter and libraries); ``None`` if the engine cannot say."""
        if self._runtime_id is None:
            try:
                self._runtime_id = f"docker {self.client.images.get(self.image).id}"
            except Exception as exc:  # unknown means: keep nothing
                log.warning("cannot read the id of image %s: %s", self.image, exc)
                return None
        return self._runtime_id

    def _release(self) -> None:
        self._finalizer()
        self.client.close()

    def _execute(self, job: Job) -> ExecResult:
        started = time.monotonic()
        if self.mode == "forkserver":
            return self._execute_forked(job, started)
        return self._execute_fresh(job, started)

    def _execute_fresh(self, job: Job, started: float) -> ExecResult:
        key = PoolKey.of(job.limits)
        if self.mode == "forkserver":
            warm = self._pool.create(key, self._fresh_config)
        else:
            warm = self._pool.take(key)
        try:
            return self._run_in(warm, job, started)
        finally:
            warm.close()
            self._pool.discard(warm.id)

    def _run_in(self, warm: Warm, job: Job, started: float) -> ExecResult:
        buffer = CappedBuffer(job.limits.output_bytes)

        def kill() -> None:
            # In a thread: the engine may only finish the kill once we drain the stream.
            threading.Thread(target=self._pool.kill, args=(warm.id,), daemon=True).start()

        timed_out = stream_exec(
            warm.sock, job_payload(job), buffer, started + job.limits.timeout_s, kill
        )
        exit_code, oom = self._outcome(warm.id, timed_out)
        return ExecResult(
            exit_code=exit_code,
            stdout=buffer.text("stdout"),
            stderr=buffer.text("stderr"),
            timed_out=timed_out,
            oom_killed=oom,
            output_truncated=buffer.truncated,
            duration_s=time.monotonic() - started,
        )

    def _execute_forked(self, job: Job, started: float) -> ExecResult:
        key = PoolKey.of(job.limits)
        message = job_message(job, pack(job) if job.files else b"")
        for attempt in range(3):
            buffer = CappedBuffer(job.limits.output_bytes)
            warm = self._pool.take_ready(key)
            if warm is None:
                # No server is ready for these limits: one is made in the background
                # (its preload takes seconds; not with pool_size=0), and this run goes
                # to a fresh container.
                if self._pool.size:
                    self._pool.add_spare(key)
                return self._execute_fresh(job, started)
            clean = False
            try:
                kill = threading.Thread(target=self._pool.kill, args=(warm.id,), daemon=True)
                end = run_job(warm.stream, message, job, buffer, kill.start)
            except ServerLost as exc:
                with mapped("the Docker engine during a run"):
                    self.client.ping()  # an engine that went away is an error of its own
                log.warning("sandbox: a server container died under a run (%s)", exc)
                self._pool.drop_dead()  # after an engine restart, none of them runs
                if attempt < 2:
                    continue
                note = "\nsipdo: the sandbox's server died during the run (killed by it?)\n"
                buffer.add("stderr", note.encode())
                end = RunEnd(137, False, False, buffer.truncated, True)
            else:
                warm.runs += 1
                clean = not end.tainted and warm.runs < MAX_RUNS
            finally:
                if clean:
                    self._pool.give_back(warm, key)
                else:
                    warm.close()
                    self._pool.discard(warm.id)
            return ExecResult(
                exit_code=end.exit_code,
                stdout=buffer.text("stdout"),
                stderr=buffer.text("stderr"),
                timed_out=end.timed_out,
                oom_killed=end.oom_killed,
                output_truncated=end.truncated,
                duration_s=time.monotonic() - started,
            )
        raise SandboxError("unreachable")  # pragma: no cover

    def _outcome(self, container_id: str, timed_out: bool) -> tuple[int, bool]:
        """Exit code of the run, and whether the kernel OOM-killed in the container."""
        if timed_out:
            return 137, False
        with mapped("reading the run's exit code"):
            code = int(self.client.api.wait(container_id, timeout=30)["StatusCode"])
        return code, code == 137 and self._pool.oom_killed(container_id)


def _prepare(client: Any, warm: Warm, key: PoolKey) -> None:
    """Wait for a new container's server, then size its memory to the run's plus the server's."""
    warm.stream = ServerStream(warm.sock)
    info = wait_ready(warm.stream)
    limit = memory_limit(key.memory_mb, info)
    with mapped("sizing a sandbox server's memory"):
        client.api.update_container(warm.id, mem_limit=limit, memswap_limit=limit)
