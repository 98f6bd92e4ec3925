"""Runs the fork server prepares ahead (``forkserver.Spare``): one run each, never left behind.

A spare has joined a fresh cgroup and made its namespaces before its job is
known; these tests attack what that adds: a cgroup shared by two runs, limits
of the spare's instead of the job's, spares or cgroups outliving their owner.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sipdo.sandbox import Limits
from sipdo.sandbox._cgroup import CgroupFactory
from sipdo.sandbox.forkserver import ForkedRun, Spare
from sipdo.sandbox.process import ProcessSandbox

FAST = Limits(timeout_s=10, memory_mb=256, pids=32, output_bytes=100_000, disk_mb=16)


@pytest.fixture
def sandbox() -> Iterator[ProcessSandbox]:
    with ProcessSandbox(max_concurrency=2) as sandbox:
        if not sandbox.has_cgroups:
            pytest.skip("no per-run cgroups here")
        assert sandbox.wait_ready()
        yield sandbox


def test_every_run_has_a_cgroup_of_its_own_with_the_jobs_limits(
    sandbox: ProcessSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[tuple[str, str]] = []
    start = Spare.start

    def spy(self: Spare, *args: Any) -> ForkedRun:
        assert self.cgroup is not None
        name = "memory.max" if self.cgroup.v2 else "memory.limit_in_bytes"
        with open(os.path.join(self.cgroup.dirs[0], name)) as handle:  # v1: memory's is first
            used.append((self.cgroup.dirs[0], handle.read().strip()))
        return start(self, *args)

    monkeypatch.setattr(Spare, "start", spy)
    program = {"main.py": "print('ok')"}
    for memory_mb in (256, 128, 1024, 512, 128, 64):  # the spares': 512
        result = sandbox.run(
            program, ["python", "main.py"], limits=FAST.replace(memory_mb=memory_mb)
        )
        assert result.stdout == "ok\n", result.stderr
        assert used[-1][1] == str(memory_mb * 1024 * 1024)  # the job's, not the spare's
    dirs = [d for d, _ in used]
    assert len(set(dirs)) == len(dirs)  # never two runs in one cgroup
    sandbox.close()
    assert not [d for d in dirs if os.path.exists(d)]  # all removed, in the background


def test_a_run_with_a_lower_memory_limit_than_the_spares_is_held_to_it(
    sandbox: ProcessSandbox,
) -> None:
    hog = "x = bytearray(200 * 1024 * 1024)\nprint('survived')"
    result = sandbox.run({"main.py": hog}, ["python", "main.py"], limits=FAST.replace(memory_mb=64))
    assert "survived" not in result.stdout
    assert result.exit_code != 0


def test_spares_and_their_cgroups_do_not_outlive_a_killed_caller() -> None:
    try:
        CgroupFactory().probe()
    except Exception as exc:
        pytest.skip(f"no per-run cgroups here: {exc}")
    caller = textwrap.dedent(
        """
        import os, signal, time
        from sipdo.sandbox.process import ProcessSandbox
        sandbox = ProcessSandbox(max_concurrency=2)
        assert sandbox.wait_ready()
        server = sandbox._server
        deadline = time.monotonic() + 30
        while len(server._spares) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        dirs = [d for s in server._spares for d in s.cgroup.dirs]
        print(server.pid, *dirs, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", caller], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -9, done.stderr
    server_pid, *dirs = done.stdout.split()
    assert len(dirs) >= 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the server exits, its spares die with it
        CgroupFactory()  # reaps the cgroups of dead owners that hold no process
        if not os.path.exists(f"/proc/{server_pid}") and not any(map(os.path.exists, dirs)):
            break
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{server_pid}")
    assert not [d for d in dirs if os.path.exists(d)]
