"""Docker backend lifecycle: nothing left behind, stale containers reaped, errors mapped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from sipdo.errors import SandboxUnavailableError
from sipdo.sandbox.engine import LABEL_INSTANCE, LABEL_PID, reap_stale

pytestmark = pytest.mark.docker


@pytest.fixture
def client(docker_client: Any) -> Any:
    return docker_client


def containers(client: Any, label: str) -> list[Any]:
    found: list[Any] = client.api.containers(all=True, filters={"label": label})
    return found


def test_nothing_left_after_close(client: Any) -> None:
    from sipdo.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(pool_size=3)
    label = f"{LABEL_INSTANCE}={sandbox.instance_id}"
    for _ in range(3):
        assert sandbox.run({}, ["python", "-c", "print(1)"]).stdout == "1\n"
    deadline = time.monotonic() + 20
    while len(containers(client, label)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert containers(client, label), "the warm pool should hold started containers"
    sandbox.close()
    assert containers(client, label) == []


def test_nothing_left_after_an_exception(client: Any) -> None:
    from sipdo.sandbox.docker import DockerSandbox

    labels = []

    def crash() -> None:
        with DockerSandbox(pool_size=2) as sandbox:
            labels.append(f"{LABEL_INSTANCE}={sandbox.instance_id}")
            sandbox.run({}, ["python", "-c", "pass"])
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        crash()
    assert containers(client, labels[0]) == []


def test_timeout_kills_and_removes_the_container(client: Any) -> None:
    from sipdo.sandbox import Limits
    from sipdo.sandbox.docker import DockerSandbox

    with DockerSandbox(pool_size=0) as sandbox:
        label = f"{LABEL_INSTANCE}={sandbox.instance_id}"
        result = sandbox.run({}, ["sleep", "60"], limits=Limits(timeout_s=1))
        assert result.timed_out
        assert result.exit_code == 137
        deadline = time.monotonic() + 10
        while containers(client, label) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert containers(client, label) == []


def test_containers_of_a_dead_owner_are_reaped(client: Any) -> None:
    owner = textwrap.dedent("""
        import time
        from sipdo.sandbox.docker import DockerSandbox
        sandbox = DockerSandbox(pool_size=2)
        print('ready', flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", owner], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        label = f"{LABEL_PID}={proc.pid}"
        deadline = time.monotonic() + 30
        while len(containers(client, label)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(containers(client, label)) == 2
        assert reap_stale(client) == 0  # the owner is alive: its containers stay
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert containers(client, label), "a SIGKILLed owner cannot clean up by itself"
    assert reap_stale(client) >= 2
    assert containers(client, label) == []


def test_missing_image_is_unavailable(client: Any) -> None:
    from sipdo.sandbox.docker import DockerSandbox

    with pytest.raises(SandboxUnavailableError, match="image"):
        DockerSandbox("sipdo-no-such-image:never")


def test_unknown_runtime_is_unavailable(client: Any) -> None:
    from sipdo.sandbox.docker import DockerSandbox

    if "runsc" in client.info().get("Runtimes", {}):
        pytest.skip("gVisor is installed here")
    with pytest.raises(SandboxUnavailableError, match="runsc"):
        DockerSandbox(runtime="runsc")


def test_per_run_limits_get_their_own_container(client: Any) -> None:
    from sipdo.sandbox import Limits
    from sipdo.sandbox.docker import DockerSandbox

    with DockerSandbox(pool_size=1) as sandbox:
        source = "print(open('/sys/fs/cgroup/memory/memory.limit_in_bytes').read())"
        result = sandbox.run({}, ["python", "-c", source], limits=Limits(memory_mb=200))
        if result.exit_code:  # cgroup v2 layout
            source = "print(open('/sys/fs/cgroup/memory.max').read())"
            result = sandbox.run({}, ["python", "-c", source], limits=Limits(memory_mb=200))
        assert int(result.stdout) == 200 * 1024 * 1024


def test_image_build_is_idempotent(client: Any) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sipdo.sandbox.image", "build"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "nothing to build" in out.stdout
