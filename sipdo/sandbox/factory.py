"""``open_sandbox``: pick a backend by name, or the best available one for ``"auto"``."""

from __future__ import annotations

import logging
from typing import Any

from sipdo.errors import ConfigurationError, SandboxUnavailableError
from sipdo.sandbox.base import Sandbox

log = logging.getLogger(__name__)

KINDS = ("auto", "docker", "process")


def docker_unavailable_reason(image: str | None = None) -> str | None:
    """Why the Docker backend cannot run here (no SDK, engine or image), or None if it can."""
    try:
        from sipdo.sandbox.engine import docker_problem
    except ImportError as exc:  # the docker SDK is a dependency, but be explicit
        return f"the docker SDK cannot be imported: {exc}"
    return docker_problem(image)


def open_sandbox(kind: str = "auto", **kw: Any) -> Sandbox:
    """Open a sandbox backend: ``"docker"``, ``"process"`` or ``"auto"``.

    ``"auto"`` picks Docker when the engine answers and the sandbox image
    exists, else the process backend; the choice and the reason are logged at
    INFO. Keyword arguments go to the backend (``image``, ``pool_size`` and
    ``runtime`` only to Docker). An unknown kind raises ``ConfigurationError``;
    an explicit ``"docker"`` that cannot run raises ``SandboxUnavailableError``.
    """
    if kind not in KINDS:
        raise ConfigurationError(f"unknown sandbox kind {kind!r}; available: {', '.join(KINDS)}")
    docker_only = {k: kw.pop(k) for k in ("image", "pool_size", "runtime") if k in kw}
    if kind in ("auto", "docker"):
        reason = docker_unavailable_reason(docker_only.get("image"))
        if reason is None:
            from sipdo.sandbox.docker import DockerSandbox

            log.info("sandbox: using docker (engine reachable, image present)")
            return DockerSandbox(**docker_only, **kw)
        if kind == "docker":
            raise SandboxUnavailableError(reason)
        log.info("sandbox: using process backend because %s", reason)
    else:
        log.info("sandbox: using process backend (asked for explicitly)")
    from sipdo.sandbox.process import ProcessSandbox

    return ProcessSandbox(**kw)
