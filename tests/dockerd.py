"""A private Docker engine for tests that must stop, kill or restart one.

Never touch the shared engine: a test that needs an engine to die starts its
own ``dockerd`` here (own socket, data-root, exec-root and pidfile, no bridge,
no iptables), loads the sandbox image into it from the shared engine once, and
kills / restarts it at will. Use the ``private_dockerd`` fixture (session
scoped: the image is loaded once) by importing it into a conftest or a test
module::

    from tests.dockerd import private_dockerd  # noqa: F401  (the fixture)

    def test_x(private_dockerd: PrivateDockerd, monkeypatch) -> None:
        monkeypatch.setenv("DOCKER_HOST", private_dockerd.host)
        ...
        private_dockerd.restart(kill=True)

Every process it leaves (dockerd, its managed containerd, shims) carries the
engine's base directory on its command line, so ``stop`` finds and ends only
those, by pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sipdo.sandbox.engine import DEFAULT_IMAGE


class PrivateDockerd:
    """One dockerd of the test's own, under ``base``; started, killed and restarted on demand."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.socket = os.path.join(base, "docker.sock")
        self.host = f"unix://{self.socket}"
        self.pidfile = os.path.join(base, "docker.pid")
        self.log = os.path.join(base, "dockerd.log")
        self.proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self, timeout_s: float = 60.0) -> None:
        """Start dockerd and wait until it answers; raise with its log's tail if it does not."""
        if shutil.which("dockerd") is None:
            raise RuntimeError("dockerd is not installed")
        argv = [
            "dockerd",
            f"--host={self.host}",
            f"--data-root={self.base}/data",
            f"--exec-root={self.base}/exec",
            f"--pidfile={self.pidfile}",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.answers():
                return
            time.sleep(0.2)
        raise RuntimeError(f"private dockerd did not answer in {timeout_s} s:\n{self.tail()}")

    def answers(self) -> bool:
        """Whether the engine answers a ping now."""
        import docker

        try:
            client = docker.DockerClient(base_url=self.host, timeout=3)
        except Exception:
            return False
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()

    def stop(self, *, kill: bool = False, timeout_s: float = 30.0) -> None:
        """End dockerd (SIGTERM: a clean engine shutdown; ``kill``: SIGKILL, a crash).

        A kill takes dockerd's process group (it and its managed containerd),
        as a service manager does; the containers' shims live on until the
        engine comes back, as on a real host.
        """
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            if kill:  # as a crashed engine's service manager leaves it: its containerd goes too
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if kill:  # its pid may be reused (or a zombie): dockerd would wait for it forever
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.base, "exec", "containerd", "containerd.pid"))

    def restart(self, *, kill: bool = False, down_s: float = 0.0) -> None:
        """Stop (or kill) the engine, stay down ``down_s`` seconds, start it again."""
        self.stop(kill=kill)
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        """Stop the engine, end every process of it left, unmount and delete its directory."""
        with contextlib.suppress(Exception):
            self.stop()
        for pid in self.leftover_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._unmount()
        shutil.rmtree(self.base, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------------
    def client(self) -> Any:
        """A docker SDK client for this engine (the caller closes it)."""
        import docker

        return docker.DockerClient(base_url=self.host, timeout=60)

    def load_image(self, image: str = DEFAULT_IMAGE) -> None:
        """Copy ``image`` from the shared engine into this one (``docker save | load``)."""
        import docker

        shared = docker.from_env(timeout=300)
        private = self.client()
        try:
            with contextlib.suppress(docker.errors.ImageNotFound):
                private.images.get(image)
                return
            chunks = shared.api.get_image(image)
            for _ in private.api.load_image(chunks, quiet=True):
                pass
            private.images.get(image)  # raises if the load did not produce it
        finally:
            shared.close()
            private.close()

    def leftover_pids(self) -> list[int]:
        """Processes whose command line names this engine's directory (dockerd, containerd...)."""
        needle = self.base.encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if needle in handle.read():
                        found.append(int(entry))
            except OSError:
                continue
        return found

    def tail(self, lines: int = 20) -> str:
        try:
            with open(self.log, errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def _unmount(self) -> None:
        with open("/proc/self/mountinfo") as handle:
            points = [line.split()[4] for line in handle]
        for point in sorted((p for p in points if p.startswith(self.base)), reverse=True):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)


@pytest.fixture(scope="session")
def private_dockerd() -> Iterator[PrivateDockerd]:
    """A running private dockerd holding the sandbox image; skips when that cannot be had.

    Needs root, ``dockerd`` and the sandbox image in the shared engine. Under
    ``CI=true`` a missing piece fails instead of skipping. Tests may kill and
    restart it; it is started again if a test left it down.
    """
    from tests.conftest import in_ci, require_docker

    require_docker()
    problem = None
    if os.geteuid() != 0:
        problem = "a private dockerd needs root"
    elif shutil.which("dockerd") is None:
        problem = "dockerd is not installed"
    if problem:
        if in_ci():
            pytest.fail(f"private dockerd unavailable: {problem}", pytrace=False)
        pytest.skip(problem)
    engine = PrivateDockerd(tempfile.mkdtemp(prefix="sipdo-dockerd-", dir="/tmp"))
    try:
        engine.start()
        engine.load_image()
        yield engine
    finally:
        engine.close()


@pytest.fixture
def running_private_dockerd(private_dockerd: PrivateDockerd) -> PrivateDockerd:
    """``private_dockerd``, started again if an earlier test left it stopped."""
    if not private_dockerd.answers():
        private_dockerd.stop()
        private_dockerd.start()
    return private_dockerd


def wait_for(predicate: Any, timeout_s: float, interval_s: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout_s`` passes; return its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)


__all__ = ["PrivateDockerd", "private_dockerd", "running_private_dockerd", "wait_for"]
