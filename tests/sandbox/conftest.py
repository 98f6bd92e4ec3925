"""The conformance suite runs over every backend x mode, each attacked on what it claims.

Modes: ``forkserver`` (runs forked from a pre-warmed server) and ``fresh`` (a
new process or container per run); the process backend also in its basic
(no-namespace) form. A fork-server fixture waits until its server serves, so
its runs really are forked (``test_runs_are_forked`` checks).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sipdo.sandbox import Limits, Sandbox
from sipdo.sandbox.process import ProcessSandbox


def _process(**kw: object) -> Iterator[ProcessSandbox]:
    with ProcessSandbox(max_concurrency=4, **kw) as sandbox:  # type: ignore[arg-type]
        if sandbox.mode == "forkserver":
            assert sandbox.wait_ready(), "the fork server did not start"
        yield sandbox


@pytest.fixture(scope="session")
def process_forkserver_sandbox() -> Iterator[ProcessSandbox]:
    yield from _process(mode="forkserver")


@pytest.fixture(scope="session")
def process_fresh_sandbox() -> Iterator[ProcessSandbox]:
    yield from _process(mode="fresh")


@pytest.fixture(scope="session")
def basic_forkserver_sandbox() -> Iterator[ProcessSandbox]:
    yield from _process(mode="forkserver", namespaces=False)


@pytest.fixture(scope="session")
def basic_fresh_sandbox() -> Iterator[ProcessSandbox]:
    yield from _process(mode="fresh", namespaces=False)


@pytest.fixture(scope="session")
def docker_forkserver_sandbox() -> Iterator[Sandbox]:
    """The Docker backend serving runs from fork-server containers."""
    from tests.conftest import require_docker

    require_docker()
    from sipdo.sandbox.docker import DockerSandbox

    with DockerSandbox(pool_size=2, max_concurrency=4, mode="forkserver") as sandbox:
        # The limits the suites use, served by fork servers from their first run on.
        fast = Limits(timeout_s=5, memory_mb=256, pids=32, output_bytes=100_000, disk_mb=16)
        for limits in (fast, fast.replace(memory_mb=128), fast.replace(cpus=0.5)):
            sandbox.prewarm(limits, count=4 if limits is fast else 1)
        yield sandbox


@pytest.fixture(scope="session")
def docker_fresh_sandbox() -> Iterator[Sandbox]:
    """The Docker backend with a single-use container per run."""
    from tests.conftest import require_docker

    require_docker()
    from sipdo.sandbox.docker import DockerSandbox

    with DockerSandbox(pool_size=2, max_concurrency=4, mode="fresh") as sandbox:
        yield sandbox


@pytest.fixture(
    params=[
        "process_forkserver_sandbox",
        "process_fresh_sandbox",
        "basic_forkserver_sandbox",
        "basic_fresh_sandbox",
        pytest.param("docker_forkserver_sandbox", marks=pytest.mark.docker),
        pytest.param("docker_fresh_sandbox", marks=pytest.mark.docker),
    ],
    ids=[
        "process-forkserver",
        "process-fresh",
        "basic-forkserver",
        "basic-fresh",
        "docker-forkserver",
        "docker-fresh",
    ],
)
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    """Every backend and mode in turn, each attacked only on what it claims."""
    backend: Sandbox = request.getfixturevalue(request.param)
    return backend
