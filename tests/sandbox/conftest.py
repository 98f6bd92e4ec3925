"""The conformance suite also attacks the basic (no-namespace) process mode."""

from __future__ import annotations

import pytest

from sipdo.sandbox import Sandbox


@pytest.fixture(
    params=[
        "process_sandbox",
        "basic_process_sandbox",
        pytest.param("docker_sandbox", marks=pytest.mark.docker),
    ],
    ids=["process", "process-basic", "docker"],
)
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    """Every backend and mode in turn, each attacked only on what it claims."""
    backend: Sandbox = request.getfixturevalue(request.param)
    return backend
