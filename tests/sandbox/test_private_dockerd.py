"""The private-engine fixture itself: a sandbox runs on it, and it survives a crash and restart."""

from __future__ import annotations

import pytest

from sipdo.sandbox.engine import DEFAULT_IMAGE
from tests.dockerd import PrivateDockerd, private_dockerd, running_private_dockerd

__all__ = ["private_dockerd", "running_private_dockerd"]  # the fixtures, used by name

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_private_engine_runs_sandboxes_and_comes_back_after_a_crash(
    running_private_dockerd: PrivateDockerd, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sipdo.sandbox.docker import DockerSandbox

    engine = running_private_dockerd
    monkeypatch.setenv("DOCKER_HOST", engine.host)
    with DockerSandbox(pool_size=0) as sandbox:
        assert sandbox.run({}, ["python", "-c", "print(6 * 7)"]).stdout == "42\n"
    engine.restart(kill=True)
    assert engine.answers()
    client = engine.client()
    try:
        assert client.images.get(DEFAULT_IMAGE)  # the loaded image survives the crash
    finally:
        client.close()
