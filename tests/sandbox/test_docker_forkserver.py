"""The Docker fork server: runs are forked in long-lived containers; hostile runs do not carry over.

Each container serves one run at a time; after a run everything of it is
killed and wiped, and a container where anything was left is replaced. These
tests attack what only a shared server container has; the conformance suite
proves every claim in both modes.
"""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from sipdo.errors import SandboxError
from sipdo.sandbox import Limits, Sandbox
from tests.dockerd import PrivateDockerd, private_dockerd, running_private_dockerd

__all__ = ["private_dockerd", "running_private_dockerd"]  # the fixtures, used by name

pytestmark = pytest.mark.docker

FAST = Limits(timeout_s=10, memory_mb=256, pids=32, output_bytes=100_000, disk_mb=16)


@pytest.fixture(scope="module")
def served() -> Iterator[Sandbox]:
    """One server container at a time, so consecutive runs meet the same server when clean."""
    from tests.conftest import require_docker

    require_docker()
    from sipdo.sandbox.docker import DockerSandbox

    with DockerSandbox(pool_size=1, max_concurrency=1, mode="forkserver", limits=FAST) as sandbox:
        sandbox.prewarm(FAST, count=1)
        yield sandbox


def run_py(sandbox: Sandbox, source: str, *args: str):
    return sandbox.run(
        {"main.py": textwrap.dedent(source)}, ["python", "main.py", *args], limits=FAST
    )


def server_of(sandbox: Sandbox) -> str:
    return run_py(sandbox, "import os; print(os.getppid())").stdout.strip()


def test_runs_are_forked_and_the_container_is_reused(served: Sandbox) -> None:
    probe = "import sys, os; print('hypothesis' in sys.modules, os.getppid(), sys.argv[1:])"
    first = run_py(served, probe, "x")
    second = run_py(served, probe, "x")
    assert first.stdout.split()[0] == "True", first
    assert first.stdout == second.stdout  # same server, a new fork each time


def test_pollution_does_not_reach_the_next_run(served: Sandbox) -> None:
    polluted = run_py(
        served,
        """
        import builtins, os, sys, pytest, hypothesis
        builtins.EVIL = 1
        sys.modules['json'] = None
        pytest.main = None
        hypothesis.given = None
        os.environ['EVIL'] = '1'
        for path in ('/tmp/evil', '/dev/shm/evil', 'evil'):
            open(path, 'w').write('x')
        print('polluted')
    """,
    )
    assert polluted.stdout == "polluted\n"
    check = run_py(
        served,
        """
        import builtins, glob, os, sys, json, pytest, hypothesis
        bad = [n for n, v in [('builtins', hasattr(builtins, 'EVIL')),
                              ('pytest', not callable(pytest.main)),
                              ('hypothesis', not callable(hypothesis.given)),
                              ('environ', 'EVIL' in os.environ)] if v]
        print(bad, glob.glob('/tmp/*') + glob.glob('/dev/shm/*'), sorted(os.listdir('.')))
    """,
    )
    assert check.stdout == "[] [] ['main.py']\n", check


def test_a_run_cannot_trace_or_read_its_server(served: Sandbox) -> None:
    result = run_py(
        served,
        """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        server = os.getppid()
        report = []
        if libc.ptrace(16, server, 0, 0) == 0:  # PTRACE_ATTACH
            report.append('traced')
        for what in ('environ', 'mem', 'fd/0', 'fd/1'):
            try:
                open(f'/proc/{server}/{what}', 'rb').read(1); report.append(what)
            except OSError:
                pass
        print(report)
    """,
    )
    assert result.stdout == "[]\n", result


def test_leftover_ipc_taints_the_container(served: Sandbox) -> None:
    left = run_py(
        served,
        """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        print(libc.shmget(0x5151, 4096, 0o1600) >= 0)  # IPC_CREAT | 0600, never removed
    """,
    )
    assert left.stdout == "True\n"
    after = run_py(served, "print(open('/proc/sysvipc/shm').read().count('\\n'))")
    assert after.stdout == "1\n"  # the header only: the next run is in another container


def test_a_run_that_kills_its_server_does_not_affect_the_next(served: Sandbox) -> None:
    from sipdo.sandbox.docker import DockerSandbox

    assert isinstance(served, DockerSandbox)
    # Run again after the container died (a server, else a fresh container, where
    # the same program cannot kill anything): the caller gets a result, not an error.
    killer = run_py(served, "import os, signal; os.kill(os.getppid(), signal.SIGKILL)")
    assert killer.exit_code in (0, 137), killer
    served.prewarm(FAST, count=1)
    after = run_py(served, "import sys, os; print('hypothesis' in sys.modules, os.listdir('.'))")
    assert after.stdout == "True ['main.py']\n", after


def test_memory_cap_is_sized_without_the_page_cache(served: Sandbox) -> None:
    from sipdo.sandbox.docker import DockerSandbox

    assert isinstance(served, DockerSandbox)
    limits = FAST.replace(memory_mb=128)
    served.prewarm(limits, count=1)
    result = served.run(
        {"main.py": "held = []\nfor i in range(1, 9):\n    held.append(b'x' * 32 * 2**20)\n"
                    "    print(i * 32, flush=True)\n"},
        ["python", "main.py"],
        limits=limits,
    )  # fmt: skip
    reached = max((int(x) for x in result.stdout.split()), default=0)
    assert reached <= limits.memory_mb
    assert reached >= 64  # the run gets its share, not less
    assert result.oom_killed


@pytest.mark.slow
def test_engine_killed_mid_run_is_a_clear_error_then_recovers(
    running_private_dockerd: PrivateDockerd, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sipdo.sandbox.docker import DockerSandbox

    engine = running_private_dockerd
    monkeypatch.setenv("DOCKER_HOST", engine.host)
    with DockerSandbox(pool_size=1, mode="forkserver", limits=FAST) as sandbox:
        sandbox.prewarm(FAST, count=2)
        assert run_py(sandbox, "print('up')").stdout == "up\n"
        outcome: dict[str, object] = {}

        def long_run() -> None:
            try:
                outcome["result"] = run_py(sandbox, "import time; time.sleep(8); print('done')")
            except SandboxError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=long_run)
        thread.start()
        time.sleep(2)
        engine.stop(kill=True)
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert "error" in outcome, outcome  # the run's container went with the engine
        assert "engine" in str(outcome["error"]).lower()
        engine.start()
        again = run_py(sandbox, "print('back')")
        assert again.stdout == "back\n", again
