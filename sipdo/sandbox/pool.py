"""A warm pool of sandbox containers, refilled and removed in the background.

A container is created with its stdin held open, attached to, and started
ahead; its agent then waits for a job. In the fresh mode it is handed out
once (``take``), with the attached stream, and then removed (``discard``);
nothing is ever returned to the pool, so no state can leak between runs. In
the fork-server mode a ``prepare`` hook waits for the container's server
before the container counts as ready, and a container whose run ended clean
comes back (``give_back``) to serve the next run.
``shutdown`` removes every container the pool ever created and did not yet
see removed, and waits until the engine confirms it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sipdo.errors import SandboxError
from sipdo.sandbox.base import Limits
from sipdo.sandbox.engine import LABEL_INSTANCE, mapped, owner_labels

log = logging.getLogger(__name__)

MAX_IDLE_S = 1800.0  # well inside the agent's one-hour wait for a job
FILLERS = 2


@dataclass(frozen=True, slots=True)
class PoolKey:
    """The limits fixed when a container is created (timeout and output are per run)."""

    memory_mb: int
    cpus: float
    pids: int
    disk_mb: int
    network: bool

    @classmethod
    def of(cls, limits: Limits) -> PoolKey:
        return cls(limits.memory_mb, limits.cpus, limits.pids, limits.disk_mb, limits.network)


class Warm:
    """A started container and the attached stream to its stdin / stdout / stderr."""

    def __init__(self, container_id: str, raw: Any) -> None:
        self.id = container_id
        self.raw = raw
        self.sock: socket.socket = getattr(raw, "_sock", raw)
        self.runs = 0  # runs served (fork-server mode)
        self.stream: Any = None  # the server's message stream (fork-server mode)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(OSError):
            self.raw.close()


class ContainerPool:
    """Keeps ``size`` started containers of one ``PoolKey`` ready; others are made on demand."""

    def __init__(
        self,
        client: Any,
        config: Callable[[PoolKey], dict[str, Any]],
        key: PoolKey,
        size: int,
        prepare: Callable[[Warm, PoolKey], None] | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.prepare = prepare
        self.key = key
        self.size = max(0, size)
        self.instance = uuid.uuid4().hex
        self._ready: deque[tuple[Warm, float]] = deque()
        # Served containers of other keys, kept to serve again (fork-server mode).
        self._spare: dict[PoolKey, deque[tuple[Warm, float]]] = {}
        self._making: dict[PoolKey, int] = {}
        self._live: set[str] = set()
        self._cond = threading.Condition()
        self._closing = False
        self._doomed: queue.Queue[str | None] = queue.Queue()
        self._remover = threading.Thread(target=self._remove_loop, name="sipdo-reaper", daemon=True)
        self._remover.start()
        self._inflight = 0
        # Two creators keep up better than one: the engine works on both cores.
        self._fillers = [
            threading.Thread(target=self._fill_loop, name=f"sipdo-pool-{i}", daemon=True)
            for i in range(min(self.size, FILLERS))
        ]
        for filler in self._fillers:
            filler.start()

    def create(
        self, key: PoolKey, config: Callable[[PoolKey], dict[str, Any]] | None = None
    ) -> Warm:
        """Create, attach to and start one container; it is tracked until removed.

        ``config`` replaces the pool's own (then ``prepare`` is not applied).
        """
        labels = {**owner_labels(), LABEL_INSTANCE: self.instance}
        settings = (config or self.config)(key)
        with mapped("creating a sandbox container"):
            container_id = str(self.client.api.create_container(**settings, labels=labels)["Id"])
        with self._cond:
            self._live.add(container_id)
            closing = self._closing
        if closing:
            self.discard(container_id)
            raise SandboxError("the sandbox is closed")
        try:
            with mapped("attaching to a sandbox container"):
                params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
                raw = self.client.api.attach_socket(container_id, params=params)
            warm = Warm(container_id, raw)
            with mapped("starting a sandbox container"):
                self.client.api.start(container_id)
            if self.prepare is not None and config is None:
                self.prepare(warm, key)
        except SandboxError:
            self.discard(container_id)
            raise
        return warm

    def take(self, key: PoolKey) -> Warm:
        """A started container for one run: from the pool if ``key`` matches, else a new one."""
        return self.take_ready(key) or self.create(key)

    def take_ready(self, key: PoolKey) -> Warm | None:
        """A ready container of ``key``, or None (never waits for the engine)."""
        with self._cond:
            ready = self._ready if key == self.key else self._spare.get(key, deque())
            while ready:
                warm, born = ready.popleft()
                self._cond.notify_all()
                if time.monotonic() - born < MAX_IDLE_S:
                    return warm
                warm.close()
                self._doomed.put(warm.id)
        return None

    def drop_dead(self) -> int:
        """Discard ready containers the engine no longer runs (after one died, or the engine)."""
        with self._cond:
            lists = [self._ready, *self._spare.values()]
            ready = [(held, item) for held in lists for item in held]
        dropped = 0
        for held, (warm, born) in ready:
            try:
                with mapped("inspecting a sandbox container"):
                    running = self.client.api.inspect_container(warm.id)["State"]["Running"]
            except SandboxError:
                running = False
            if running:
                continue
            with self._cond:
                if (warm, born) not in held:
                    continue  # taken meanwhile; its run will find out
                held.remove((warm, born))
                self._cond.notify_all()
            warm.close()
            self.discard(warm.id)
            dropped += 1
        return dropped

    def add_spare(self, key: PoolKey) -> None:
        """Make one more ready container of ``key`` in the background (at most two at once)."""
        with self._cond:
            if self._closing or self._making.get(key, 0) >= FILLERS:
                return
            self._making[key] = self._making.get(key, 0) + 1

        def make() -> None:
            try:
                self.give_back(self.create(key), key)
            except SandboxError as exc:
                log.warning("sandbox: cannot make a spare container: %s", exc)
            finally:
                with self._cond:
                    self._making[key] -= 1

        threading.Thread(target=make, name="sipdo-pool-spare", daemon=True).start()

    def give_back(self, warm: Warm, key: PoolKey) -> None:
        """Return a container whose run ended clean, to serve again (fork-server mode)."""
        with self._cond:
            ready = self._ready if key == self.key else self._spare.setdefault(key, deque())
            if not self._closing and len(ready) < max(1, self.size) + FILLERS:
                ready.appendleft((warm, time.monotonic()))
                self._cond.notify_all()
                return
        warm.close()
        self.discard(warm.id)

    def discard(self, container_id: str) -> None:
        """Schedule removal of a used container (kill + remove, in the background)."""
        self._doomed.put(container_id)

    def kill(self, container_id: str) -> None:
        """Kill a container now (a run overran its time); removal follows via ``discard``."""
        with contextlib.suppress(SandboxError), mapped("killing a sandbox container"):
            self.client.api.kill(container_id)

    def oom_killed(self, container_id: str) -> bool:
        """Whether the kernel's OOM killer struck inside the container (engine ``oom`` events).

        A single-use container's events all belong to its one run. The
        container state's ``OOMKilled`` only covers its main process, not execs.
        """
        try:
            with mapped("reading sandbox container events"):
                events = self.client.api.events(
                    since=int(time.time()) - 3600,
                    until=int(time.time()) + 1,
                    filters={"container": container_id, "event": "oom"},
                    decode=True,
                )
                return any(True for _ in events)
        except SandboxError:
            return False

    def _remove(self, container_id: str) -> None:
        import docker.errors

        try:
            self.client.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: removal already in progress (auto_remove)
                log.warning("sandbox: could not remove container %s: %s", container_id[:12], exc)
                return
        except Exception as exc:  # the engine went away; reap_stale will retry later
            log.warning("sandbox: could not remove container %s: %s", container_id[:12], exc)
            return
        with self._cond:
            self._live.discard(container_id)

    def _remove_loop(self) -> None:
        while (container_id := self._doomed.get()) is not None:
            self._remove(container_id)

    def _fill_loop(self) -> None:
        failures = 0
        while True:
            with self._cond:
                while len(self._ready) + self._inflight >= self.size and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                self._inflight += 1
            try:
                warm = self.create(self.key)
            except SandboxError as exc:
                failures += 1
                log.warning("sandbox: warm pool cannot create a container: %s", exc)
                time.sleep(min(30.0, 0.5 * 2**failures))
                continue
            finally:
                with self._cond:
                    self._inflight -= 1
            failures = 0
            with self._cond:
                self._ready.append((warm, time.monotonic()))

    def shutdown(self) -> None:
        """Stop refilling and remove every container this pool created; idempotent."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            ready = [warm for warm, _ in self._ready]
            self._ready.clear()
            for spare in self._spare.values():
                ready += [warm for warm, _ in spare]
            self._spare.clear()
        for filler in self._fillers:
            filler.join(timeout=60)
        for warm in ready:
            warm.close()
            self._doomed.put(warm.id)
        if self._remover.is_alive():
            self._doomed.put(None)
            self._remover.join(timeout=120)
        with self._cond:
            leftovers = list(self._live)
        for container_id in leftovers:
            self._remove(container_id)
