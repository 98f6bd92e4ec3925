"""Conformance suite: every backend, every isolation claim, attacked by a real program.

An attack runs only against a backend that claims the property it attacks
(``require_claim``); ``test_claimed_sets`` pins what each backend claims.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from sipdo.sandbox import ISOLATION_VOCABULARY, Limits, Sandbox
from sipdo.sandbox.process import (
    BASIC_ISOLATION,
    CGROUP_ISOLATION,
    JAILED_ISOLATION,
    ProcessSandbox,
)

from .helpers import marker, require_claim, wait_until_gone

FAST = Limits(timeout_s=5, memory_mb=256, pids=32, output_bytes=100_000, disk_mb=16)


def run_py(sandbox: Sandbox, source: str, *, limits: Limits = FAST, args: tuple[str, ...] = ()):
    return sandbox.run(
        {"main.py": textwrap.dedent(source)}, ["python", "main.py", *args], limits=limits
    )


# -- what each backend claims --------------------------------------------------


def test_claimed_sets(sandbox: Sandbox) -> None:
    assert sandbox.isolation <= ISOLATION_VOCABULARY
    if sandbox.kind == "docker":
        assert sandbox.isolation == ISOLATION_VOCABULARY
        return
    assert isinstance(sandbox, ProcessSandbox)
    if not sandbox.namespaces:
        assert sandbox.isolation == BASIC_ISOLATION
    else:
        assert os.geteuid() == 0
        extra = CGROUP_ISOLATION if sandbox.has_cgroups else frozenset()
        assert sandbox.isolation == JAILED_ISOLATION | extra


# -- the contract ---------------------------------------------------------------


def test_runs_files_stdin_and_exit_code(sandbox: Sandbox) -> None:
    files = {
        "pkg/util.py": "def twice(x):\n    return 2 * x\n",
        "main.py": textwrap.dedent("""
        import sys, os
        from pkg.util import twice
        data = sys.stdin.read()
        print(twice(int(data)), sorted(os.listdir('.')), file=sys.stdout)
        print('to stderr', file=sys.stderr)
        sys.exit(3)
    """),
    }
    result = sandbox.run(files, ["python", "main.py"], stdin="21", limits=FAST)
    assert result.exit_code == 3
    assert result.stdout == "42 ['main.py', 'pkg']\n"
    assert result.stderr == "to stderr\n"
    assert not result.timed_out
    assert not result.output_truncated
    assert not result.ok


def test_python_has_pytest_and_hypothesis(sandbox: Sandbox) -> None:
    files = {
        "solution.py": "def add(a, b):\n    return a + b\n",
        "test_solution.py": textwrap.dedent("""
            from hypothesis import given, strategies as st
            from solution import add
            @given(st.integers(), st.integers())
            def test_commutes(a, b):
                assert add(a, b) == add(b, a)
            def test_fails():
                assert add(1, 1) == 3
        """),
    }
    result = sandbox.run(
        files,
        ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        limits=FAST.replace(timeout_s=30),
    )
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "1 failed, 1 passed" in result.stdout


def test_non_utf8_output_is_replaced_not_fatal(sandbox: Sandbox) -> None:
    result = run_py(sandbox, "import sys; sys.stdout.buffer.write(b'ok\\xff\\xfe')")
    assert result.ok
    assert result.stdout.startswith("ok")
    assert "\ufffd" in result.stdout


def test_missing_command_is_a_result_not_an_exception(sandbox: Sandbox) -> None:
    result = sandbox.run({}, ["definitely-not-a-command-xyz"], limits=FAST)
    assert result.exit_code != 0
    assert not result.ok


# -- processes -------------------------------------------------------------------


def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    require_claim(sandbox, "processes")
    tag = marker()
    result = run_py(
        sandbox,
        """
        import os, sys, time
        made = 0
        for _ in range(2000):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            made += 1
        print(made, flush=True)
        while True:  # then a classic bomb until the wall clock ends the run
            try:
                os.fork()
            except OSError:
                pass
    """,
        args=(tag,),
        limits=FAST.replace(timeout_s=5),
    )
    made = int(result.stdout.split()[0])
    assert made < FAST.pids
    assert result.timed_out
    assert wait_until_gone(tag) == []


def test_thread_bomb_is_contained(sandbox: Sandbox) -> None:
    require_claim(sandbox, "processes")
    result = run_py(
        sandbox,
        """
        import threading, time
        made = 0
        try:
            for _ in range(5000):
                threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
                made += 1
        except Exception:
            pass
        print(made, flush=True)
        import os; os._exit(0)
    """,
    )
    assert int(result.stdout.split()[0]) < FAST.pids


def test_double_forked_daemon_does_not_outlive_the_run(sandbox: Sandbox, tmp_path: Path) -> None:
    require_claim(sandbox, "processes")
    tmp_path.chmod(0o777)
    target = tmp_path / "daemon-was-here"
    tag = marker()
    result = run_py(
        sandbox,
        f"""
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                for fd in (0, 1, 2):
                    os.close(fd)
                time.sleep(1.5)
                for path in ({str(target)!r}, 'daemon-was-here'):
                    try:
                        open(path, 'w').write('escaped')
                    except OSError:
                        pass
                time.sleep(30)
                os._exit(0)
            os._exit(0)
        print('parent done', flush=True)
    """,
        args=(tag,),
    )
    assert result.ok
    assert result.stdout == "parent done\n"
    assert not result.timed_out  # the run ends with its main process, not the daemon
    time.sleep(2.5)
    assert not target.exists()
    assert wait_until_gone(tag, timeout_s=1) == []


# -- memory, CPU, disk -----------------------------------------------------------


def test_memory_bomb_is_stopped(sandbox: Sandbox) -> None:
    require_claim(sandbox, "memory")
    limits = FAST.replace(memory_mb=128)
    result = run_py(
        sandbox,
        """
        chunks = []
        for i in range(1, 64):
            chunks.append(b"x" * (32 * 1024 * 1024))  # touched, not just reserved
            print(i * 32, flush=True)
    """,
        limits=limits,
    )
    assert not result.ok
    assert max(int(mb) for mb in result.stdout.split()) <= limits.memory_mb


def test_memory_cap_holds_for_the_whole_run(sandbox: Sandbox) -> None:
    require_claim(sandbox, "memory")
    limits = FAST.replace(memory_mb=128)
    result = run_py(
        sandbox,
        """
        import os, time
        for _ in range(3):  # 4 processes each holding 48 MB: 192 MB in all
            if os.fork() == 0:
                break
        held = b"x" * (48 * 1024 * 1024)
        print("held", flush=True)
        time.sleep(2)
        print("still", flush=True)
    """,
        limits=limits,
    )
    # Counted at the end, not at "held": the OOM killer may end a process that
    # already held its share, after which another one's allocation succeeds.
    assert 48 * result.stdout.count("still") <= limits.memory_mb
    assert result.stdout.count("still") <= result.stdout.count("held")


def test_cpu_use_is_capped(sandbox: Sandbox) -> None:
    require_claim(sandbox, "cpu_time")
    limits = FAST.replace(cpus=0.5, timeout_s=10)
    result = run_py(
        sandbox,
        """
        import os, time
        start = time.time()
        def spin():
            while time.time() - start < 3:
                pass
        for _ in range(3):  # 4 spinning processes would use ~12 CPU seconds
            if os.fork() == 0:
                spin()
                os._exit(0)
        spin()
        for _ in range(3):
            os.wait()
        used = os.times()
        print(used.children_user + used.children_system + used.user + used.system)
    """,
        limits=limits,
    )
    assert result.ok, result.stderr
    cpu_seconds = float(result.stdout)
    assert cpu_seconds <= limits.cpus * 3 * 1.35 + 0.3  # 4 spinners would use ~12 s


def test_disk_fill_is_bounded(sandbox: Sandbox) -> None:
    require_claim(sandbox, "host_files_write")
    result = run_py(
        sandbox,
        """
        import os
        for where in ('.', '/tmp'):
            written = 0
            try:
                with open(os.path.join(where, 'fill'), 'wb') as handle:
                    for _ in range(1024):
                        handle.write(b'x' * 1024 * 1024)
                        handle.flush()
                        written += 1
            except OSError:
                pass
            print(written, flush=True)
    """,
    )
    written = [int(x) for x in result.stdout.split()]
    assert len(written) == 2, result
    assert all(mb <= FAST.disk_mb for mb in written), result


# -- time and output -------------------------------------------------------------


def test_cpu_spin_is_killed_at_the_deadline(sandbox: Sandbox) -> None:
    require_claim(sandbox, "wall_time")
    result = run_py(sandbox, "while True:\n    pass\n", limits=FAST.replace(timeout_s=1.5))
    assert result.timed_out
    assert not result.ok
    assert result.duration_s < 4


def test_sigterm_ignoring_sleeper_is_killed(sandbox: Sandbox) -> None:
    require_claim(sandbox, "wall_time")
    tag = marker()
    result = run_py(
        sandbox,
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print('sleeping', flush=True)
        time.sleep(120)
    """,
        args=(tag,),
        limits=FAST.replace(timeout_s=3),
    )
    assert result.timed_out
    assert result.stdout == "sleeping\n"
    assert result.duration_s < 6
    assert wait_until_gone(tag) == []


@pytest.mark.parametrize("ends", [True, False], ids=["ends", "endless"])
def test_output_flood_is_capped(sandbox: Sandbox, ends: bool) -> None:
    require_claim(sandbox, "output")
    limits = FAST.replace(output_bytes=10_000, timeout_s=3)
    loop = "for _ in range(2000)" if ends else "while True"
    result = run_py(
        sandbox,
        f"""
        import sys
        {loop}:
            sys.stdout.write('o' * 10000)
            sys.stderr.write('e' * 10000)
    """,
        limits=limits,
    )
    kept = len(result.stdout.encode()) + len(result.stderr.encode())
    assert result.output_truncated
    assert 0 < kept <= limits.output_bytes
    assert result.timed_out is not ends
    assert result.duration_s < 8


# -- network -----------------------------------------------------------------------


def test_no_network_to_host_loopback_or_abstract_sockets(sandbox: Sandbox) -> None:
    require_claim(sandbox, "network")
    listeners = []
    targets = []
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        server = socket.socket(family, socket.SOCK_STREAM)
        server.bind((host, 0))
        server.listen()
        listeners.append(server)
        targets.append([family.name, host, server.getsockname()[1]])
    abstract = "\0sipdo-test-" + uuid.uuid4().hex
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(abstract)
    unix.listen()
    listeners.append(unix)
    try:
        result = run_py(
            sandbox,
            f"""
            import socket
            for family, host, port in {targets!r}:
                s = socket.socket(getattr(socket, family), socket.SOCK_STREAM)
                s.settimeout(2)
                try:
                    s.connect((host, port)); print('CONNECTED', host)
                except OSError as exc:
                    print('blocked', host, exc)
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                u.connect({abstract!r}); print('CONNECTED abstract')
            except OSError as exc:
                print('blocked abstract', exc)
            try:
                socket.create_connection(('1.1.1.1', 53), timeout=2); print('CONNECTED internet')
            except OSError as exc:
                print('blocked internet', exc)
        """,
        )
        assert result.ok, result.stderr
        assert "CONNECTED" not in result.stdout
        assert result.stdout.count("blocked") == 4
        for server in listeners:
            server.setblocking(False)
            with pytest.raises(BlockingIOError):
                server.accept()
    finally:
        for server in listeners:
            server.close()


# -- host files, environment, privileges -----------------------------------------------


def test_host_secret_file_is_not_readable(sandbox: Sandbox, tmp_path: Path) -> None:
    require_claim(sandbox, "host_files_read")
    secret = uuid.uuid4().hex
    path = tmp_path / "secret.txt"
    path.write_text(secret)
    path.chmod(0o644)
    for parent in [tmp_path, *tmp_path.parents]:
        if parent != Path("/"):
            parent.chmod(parent.stat().st_mode | 0o005)
    result = run_py(
        sandbox,
        f"""
        import os
        for path in ({str(path)!r}, '/etc/shadow', '/root/.bash_history', '/work'):
            try:
                print(open(path).read() if os.path.isfile(path) else os.listdir(path))
            except OSError as exc:
                print('denied', path, type(exc).__name__)
    """,
    )
    assert secret not in result.stdout + result.stderr
    assert f"denied {path}" in result.stdout


def test_docker_socket_is_out_of_reach(sandbox: Sandbox) -> None:
    require_claim(sandbox, "host_files_read")
    result = run_py(
        sandbox,
        """
        import socket
        for path in ('/var/run/docker.sock', '/run/docker.sock', '/run/containerd/containerd.sock'):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                s.sendall(b'GET /info HTTP/1.0\\r\\n\\r\\n')
                print('CONNECTED', s.recv(100))
            except OSError as exc:
                print('blocked', path, type(exc).__name__)
    """,
    )
    assert "CONNECTED" not in result.stdout
    assert result.stdout.count("blocked") == 3


def test_writes_outside_the_workdir_do_not_reach_the_host(sandbox: Sandbox, tmp_path: Path) -> None:
    require_claim(sandbox, "host_files_write")
    tmp_path.chmod(0o777)
    result = run_py(
        sandbox,
        f"""
        import os
        for path in ({str(tmp_path / "escape.txt")!r}, '../escape.txt', '/escape.txt',
                     '/usr/escape.txt', '/etc/escape.txt'):
            try:
                with open(path, 'w') as handle:
                    handle.write('escaped')
                print('wrote', path)
            except OSError as exc:
                print('denied', path, type(exc).__name__)
    """,
    )
    assert not (tmp_path / "escape.txt").exists()
    for path in (
        "/escape.txt",
        "/usr/escape.txt",
        "/etc/escape.txt",
        str(tmp_path.parent / "escape.txt"),
    ):
        assert not os.path.exists(path)
    assert "wrote /usr" not in result.stdout
    assert "wrote /etc" not in result.stdout


def test_caller_secret_env_is_invisible(sandbox: Sandbox, tmp_path: Path) -> None:
    require_claim(sandbox, "env")
    secret = uuid.uuid4().hex
    kw: dict[str, object] = {"mode": getattr(sandbox, "mode", "fresh")}
    if isinstance(sandbox, ProcessSandbox):
        kw["namespaces"] = sandbox.namespaces
    else:
        kw["pool_size"] = 0
    kw["mode"] = sandbox.mode  # the victim runs the mode under test
    program = textwrap.dedent("""
        import os, glob
        print(dict(os.environ))
        for path in glob.glob('/proc/*/environ'):
            try:
                print(path, open(path, 'rb').read())
            except OSError:
                pass
    """)
    victim = textwrap.dedent(f"""
        import sys
        from sipdo.sandbox import open_sandbox
        kw = {kw!r}
        with open_sandbox({sandbox.kind!r}, **kw) as sb:
            if sb.mode == "forkserver" and hasattr(sb, "wait_ready"):  # else fresh until ready
                assert sb.wait_ready()
            result = sb.run({{'main.py': {program!r}}}, ['python', 'main.py'])
        sys.stdout.write(result.stdout + result.stderr)
    """)
    env = {**os.environ, "SIPDO_TEST_SECRET": secret}
    out = subprocess.run(
        [sys.executable, "-c", victim], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "PATH" in out.stdout
    assert secret not in out.stdout


def test_no_root_no_capabilities_no_raw_sockets(sandbox: Sandbox) -> None:
    require_claim(sandbox, "privileges")
    result = run_py(
        sandbox,
        """
        import os, socket, json
        report = {'euid': os.geteuid()}
        lines = open('/proc/self/status').read().splitlines()
        status = dict(line.split(':\\t', 1) for line in lines if ':\\t' in line)
        report['CapEff'] = status['CapEff'].strip()
        report['NoNewPrivs'] = status['NoNewPrivs'].strip()
        try:
            os.setuid(0); report['setuid'] = 'ok'
        except OSError as exc:
            report['setuid'] = type(exc).__name__
        try:
            socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            report['raw'] = 'ok'
        except OSError as exc:
            report['raw'] = type(exc).__name__
        print(json.dumps(report))
    """,
    )
    report = json.loads(result.stdout)
    assert report["euid"] != 0
    assert int(report["CapEff"], 16) == 0
    assert report["NoNewPrivs"] == "1"
    assert report["setuid"] == "PermissionError"
    assert report["raw"] == "PermissionError"


def test_nothing_of_a_previous_run_is_visible(sandbox: Sandbox) -> None:
    require_claim(sandbox, "run_isolation")
    tag = marker()
    first = run_py(
        sandbox,
        f"""
        import os, subprocess, sys
        for path in ('left.txt', '/tmp/left.txt', '/dev/shm/left.txt'):
            try:
                open(path, 'w').write('left')
            except OSError:
                pass
        sleeper = [sys.executable, '-c', 'import time; time.sleep(60)', {tag!r}]
        subprocess.Popen(sleeper, start_new_session=True)
        print('planted')
    """,
    )
    assert first.stdout == "planted\n"
    second = run_py(
        sandbox,
        f"""
        import os
        seen = [p for p in ('left.txt', '/tmp/left.txt', '/dev/shm/left.txt') if os.path.exists(p)]
        for pid in filter(str.isdigit, os.listdir('/proc')):
            try:
                if {tag!r}.encode() in open(f'/proc/{{pid}}/cmdline', 'rb').read():
                    seen.append('process')
            except OSError:
                pass
        print(seen, sorted(os.listdir('.')))
    """,
    )
    assert second.stdout == "[] ['main.py']\n"


# -- concurrency -----------------------------------------------------------------------


async def test_arun_overlaps(sandbox: Sandbox) -> None:
    program = "import time\nstart = time.time()\ntime.sleep(1)\nprint(start, time.time())\n"
    results = await asyncio.gather(
        *(sandbox.arun({"main.py": program}, ["python", "main.py"], limits=FAST) for _ in range(4))
    )
    spans = sorted(tuple(map(float, r.stdout.split())) for r in results)
    assert all(r.ok for r in results)
    overlapping = sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1])
    assert overlapping >= 1
    assert spans[-1][1] - spans[0][0] < 3.5  # 4 sequential runs would take > 4 s
