"""Shared fixtures: sandboxes of every backend, and the Docker availability policy.

Docker tests skip with the reason when no engine or image is available,
except under ``CI=true``, where a missing engine or image is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from sipdo.sandbox import Sandbox
from sipdo.sandbox.engine import DEFAULT_IMAGE, docker_problem
from sipdo.sandbox.process import ProcessSandbox


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_docker(image: str = DEFAULT_IMAGE) -> None:
    """Skip (locally) or fail (under CI=true) when the Docker backend cannot run."""
    problem = docker_problem(image)
    if problem is None:
        return
    message = f"Docker sandbox unavailable: {problem}"
    if in_ci():
        pytest.fail(message + " (CI=true: Docker tests must run)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def process_sandbox() -> Iterator[ProcessSandbox]:
    """The process backend (with namespaces where the machine allows them), its fork server up."""
    with ProcessSandbox(max_concurrency=4) as sandbox:
        sandbox.wait_ready()  # else the first runs go fresh while it starts
        yield sandbox


@pytest.fixture(scope="session")
def docker_sandbox() -> Iterator[Sandbox]:
    """The Docker backend with a small warm pool; skips/fails per ``require_docker``."""
    require_docker()
    from sipdo.sandbox.docker import DockerSandbox

    with DockerSandbox(pool_size=2, max_concurrency=4) as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def basic_process_sandbox() -> Iterator[ProcessSandbox]:
    """The process backend without namespaces: what non-root users get."""
    with ProcessSandbox(max_concurrency=4, namespaces=False) as sandbox:
        yield sandbox


@pytest.fixture(
    params=["process_sandbox", pytest.param("docker_sandbox", marks=pytest.mark.docker)],
    ids=["process", "docker"],
)
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    """Every backend in turn (tests/sandbox adds the basic process mode)."""
    backend: Sandbox = request.getfixturevalue(request.param)
    return backend


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker SDK client for the local engine; skips/fails per ``require_docker``."""
    require_docker()
    from sipdo.sandbox.engine import connect

    client = connect()
    yield client
    client.close()
