"""The Docker engine boundary: connecting, error mapping, ownership labels, reaping.

Every container sipdo starts carries labels naming its owner (host, boot id,
process id and that process's start time). ``reap_stale`` removes the
containers whose owner is gone, so a crash never leaves containers behind for
longer than the next sandbox start on that host.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from functools import cache
from typing import Any

from sipdo.errors import (
    SandboxError,
    SandboxResourceError,
    SandboxTimeoutError,
    SandboxUnavailableError,
)

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "sipdo-sandbox:latest"
LABEL = "sipdo.sandbox"
LABEL_HOST = "sipdo.owner.host"
LABEL_BOOT = "sipdo.owner.boot"
LABEL_PID = "sipdo.owner.pid"
LABEL_START = "sipdo.owner.start"
LABEL_INSTANCE = "sipdo.sandbox.instance"


@cache
def boot_id() -> str:
    """This kernel boot's id: owner pids are only comparable within one boot."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return "unknown"


def process_start(pid: int) -> str | None:
    """Start time (clock ticks since boot) of ``pid``, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    return stat.rsplit(")", 1)[1].split()[19]


def owner_labels() -> dict[str, str]:
    """Labels that tie a container to this process."""
    pid = os.getpid()
    return {
        LABEL: "1",
        LABEL_HOST: socket.gethostname(),
        LABEL_BOOT: boot_id(),
        LABEL_PID: str(pid),
        LABEL_START: process_start(pid) or "",
    }


def owner_alive(labels: dict[str, str]) -> bool:
    """True if the labelled owner may still be running (or lives on another host)."""
    if labels.get(LABEL_HOST) != socket.gethostname():
        return True  # not ours to judge
    if labels.get(LABEL_BOOT) != boot_id():
        return False
    try:
        pid = int(labels.get(LABEL_PID, ""))
    except ValueError:
        return False
    return process_start(pid) == labels.get(LABEL_START)


@contextlib.contextmanager
def mapped(what: str) -> Iterator[None]:
    """Translate docker SDK / transport errors raised inside into ``sipdo.errors``."""
    import docker.errors
    import requests.exceptions

    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise SandboxUnavailableError(
            f"{what}: image not found ({exc}); build it with `python -m sipdo.sandbox.image build`"
        ) from exc
    except docker.errors.APIError as exc:
        text = str(exc).lower()
        if "no space" in text or "cannot allocate" in text or "resource" in text:
            raise SandboxResourceError(f"{what}: {exc}") from exc
        raise SandboxError(f"{what}: {exc}") from exc
    except (requests.exceptions.Timeout, TimeoutError) as exc:
        raise SandboxTimeoutError(f"{what}: the Docker engine did not answer in time") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise SandboxUnavailableError(f"{what}: Docker engine unreachable ({exc})") from exc


def connect(timeout_s: float = 30.0) -> Any:
    """A docker client for the engine in the environment (DOCKER_HOST or the local socket)."""
    import docker

    with mapped("connecting to the Docker engine"):
        client = docker.from_env(timeout=int(timeout_s))
        client.ping()
    return client


def docker_problem(image: str | None = None) -> str | None:
    """Why the Docker backend cannot run here (no engine, no image), or None if it can."""
    try:
        client = connect(timeout_s=5)
    except SandboxError as exc:
        return str(exc)
    try:
        with mapped(f"looking up image {image or DEFAULT_IMAGE}"):
            client.images.get(image or DEFAULT_IMAGE)
    except SandboxError as exc:
        return str(exc)
    finally:
        client.close()
    return None


def reap_stale(client: Any) -> int:
    """Remove sipdo containers whose owner process is gone; return how many."""
    import docker.errors

    with mapped("listing sandbox containers"):
        # Low-level listing: the high-level one inspects each container and
        # fails when one disappears meanwhile.
        containers = client.api.containers(all=True, filters={"label": LABEL})
    reaped = 0
    for container in containers:
        if owner_alive(container.get("Labels") or {}):
            continue
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.api.remove_container(container["Id"], force=True)
            reaped += 1
    if reaped:
        log.info("sandbox: reaped %d stale container(s) of dead owners", reaped)
    return reaped
