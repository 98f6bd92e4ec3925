"""The conformance suite runs over every backend x mode, each attacked on what it claims.

Modes: ``forkserver`` (runs forked from a pre-warmed server) and ``fresh`` (a
new process or container per run); the process backend also in its basic
(no-namespace) form. A fork-server fixture waits until its server serves, so
its runs really are forked (``test_runs_are_forked`` checks).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sipdo.sandbox import Sandbox
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


@pytest.fixture(
    params=[
        "process_forkserver_sandbox",
        "process_fresh_sandbox",
        "basic_forkserver_sandbox",
        "basic_fresh_sandbox",
        pytest.param("docker_sandbox", marks=pytest.mark.docker),
    ],
    ids=["process-forkserver", "process-fresh", "basic-forkserver", "basic-fresh", "docker-fresh"],
)
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    """Every backend and mode in turn, each attacked only on what it claims."""
    backend: Sandbox = request.getfixturevalue(request.param)
    return backend
