"""``sipdo verify --engine ray`` against a real local Ray cluster (slow; the ``ray`` extra).

The module starts its own cluster, ``ray start --head --block`` with two CPUs (two
worker actors) and a small object store, in a new session so that teardown stops
exactly the processes it started (SIGTERM to that process group, then SIGKILL).
The driver is the real ``sipdo verify`` console script, pointed at the cluster with
``--ray-address``; the cluster's workers import this checkout (``PYTHONPATH``).

- tasks mode: the verdicts are those of the local engine, row for row (a row that is
  not JSON included);
- solutions mode with a worker actor SIGKILLed mid-run: Ray restarts the actor and
  runs its batch again; every row has exactly one verdict, equal to the local engine's.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, SIPDO, cli_env
from tests.verifiers.datasetkit import (
    SOUND,
    TWICE,
    WEAK,
    WRONG_REFERENCE,
    read_jsonl,
    stable,
    write_jsonl,
)

pytestmark = pytest.mark.slow

RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session_processes(sid: int, needle: str) -> set[int]:
    """Pids in session ``sid`` whose command line (Ray's process title) holds ``needle``."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != sid:
                continue
            if needle in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.add(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return found


def _has_children(pid: int) -> bool:
    """Whether ``pid`` has a child process now (``/proc/*/stat``: ppid is field 4)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            return True
    return False


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, int]]:
    """``(address, session id)`` of a private two-CPU Ray head started for this module."""
    if not RAY.exists():
        reason = "Ray is not installed (pip install 'sipdo[ray]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    # Short: Ray's unix socket paths live under it (108-byte limit).
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    log_path = temp / "head.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    with log_path.open("w") as log:
        head = subprocess.Popen(
            [
                str(RAY),
                "start",
                "--head",
                "--block",
                f"--port={_free_port()}",
                "--node-ip-address=127.0.0.1",
                "--num-cpus=2",
                "--object-store-memory=80000000",
                "--include-dashboard=false",
                f"--dashboard-port={_free_port()}",
                f"--ray-client-server-port={_free_port()}",
                "--disable-usage-stats",
                f"--temp-dir={temp}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=temp,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        address = None
        while address is None:
            text = log_path.read_text()
            found = re.search(r"ray start --address='([^']+)'", text)
            if found and "Ray runtime started" in text:
                address = found.group(1)
                break
            assert head.poll() is None, text
            assert time.monotonic() < deadline, "Ray head did not start in 240 s:\n" + text
            time.sleep(0.5)
        yield address, head.pid
    finally:
        # Our session only: SIGTERM lets Ray stop its workers; what is left is killed.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=15)
        for pid in _session_processes(head.pid, ""):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        head.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


def _verify(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SIPDO), "verify", *args, "--sandbox", "process", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=900,
        env=cli_env(home),
        cwd=ROOT,
        check=False,
    )


def test_tasks_mode_on_the_cluster_gives_the_local_verdicts(
    cluster: tuple[str, int], tmp_path: Path
) -> None:
    address, _ = cluster
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [TWICE, "not json", WRONG_REFERENCE, SOUND, WEAK])
    home = tmp_path / "home"
    local = _verify(str(tasks), "-o", str(tmp_path / "local.jsonl"), "--jobs", "2", home=home)
    assert local.returncode == 0, local.stderr
    on_ray = _verify(
        str(tasks),
        "-o",
        str(tmp_path / "ray.jsonl"),
        "--jobs",
        "2",
        "--engine",
        "ray",
        "--ray-address",
        address,
        home=home,
    )
    assert on_ray.returncode == 0, on_ray.stdout + on_ray.stderr
    expected = [stable(r) for r in read_jsonl(tmp_path / "local.jsonl")]
    assert [stable(r) for r in read_jsonl(tmp_path / "ray.jsonl")] == expected
    assert [(r["task_id"], r["passed"]) for r in expected[:4]] == [
        ("twice", True),
        (None, False),
        ("wrong-ref", False),
        ("sound", True),
    ]
    assert expected[4]["task_id"] == "weak"


BODIES = [
    ("twice", "def twice(x):\n    return x + x\n"),
    ("twice", "def twice(x):\n    return 3 * x\n"),
    ("sound", SOUND["reference_solution"]),
    ("sound", "def clamp_sum(xs, lo, hi):\n    return sum(xs)\n"),
]
VERDICT = ("task_id", "passed", "status", "reason", "failed_checks", "score")


def _samples(n: int) -> list[dict[str, str]]:
    """``n`` samples cycling through ``BODIES``, each made distinct by a comment."""
    return [
        {"task_id": BODIES[i % 4][0], "solution": BODIES[i % 4][1] + f"# sample {i}\n"}
        for i in range(n)
    ]


def test_a_worker_killed_mid_run_loses_and_duplicates_no_row(
    cluster: tuple[str, int], tmp_path: Path
) -> None:
    address, session = cluster
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [TWICE, SOUND])
    samples = write_jsonl(tmp_path / "samples.jsonl", _samples(32))  # four batches of 8
    home = tmp_path / "home"
    base = [str(tasks), "--solutions", str(samples)]
    # The local engine's verdict on each distinct body (the comment changes none of them).
    four = write_jsonl(tmp_path / "four.jsonl", _samples(4))
    local = _verify(
        str(tasks), "--solutions", str(four), "-o", str(tmp_path / "l.jsonl"), home=home
    )
    assert local.returncode == 0, local.stderr
    verdicts = [{k: r[k] for k in VERDICT} for r in read_jsonl(tmp_path / "l.jsonl")]
    assert [v["passed"] for v in verdicts] == [True, False, True, False]

    before = _session_processes(session, "VerifyWorker")
    out = tmp_path / "ray.jsonl"
    driver = subprocess.Popen(
        [
            str(SIPDO),
            "verify",
            *base,
            "-o",
            str(out),
            "--jobs",
            "2",
            "--engine",
            "ray",
            "--ray-address",
            address,
            "--sandbox",
            "process",
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(home),
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 600
        # Kill one worker once the first batch is written: the others are in flight.
        while not (out.exists() and out.read_text().count("\n") >= 1):
            assert driver.poll() is None, driver.communicate()[0]
            assert time.monotonic() < deadline, "no verdict in 600 s"
            time.sleep(0.2)
        # Four batches on two workers: with the first written, both hold one. Prefer the
        # worker with a sandbox run going (a child process), to kill it mid-row too.
        workers = _session_processes(session, "VerifyWorker") - before
        assert len(workers) == 2, workers
        victim = max(workers, key=lambda pid: (_has_children(pid), pid))
        os.kill(victim, signal.SIGKILL)
        # SIGKILL takes effect when the process next leaves the kernel: on a loaded
        # machine that can take a moment (stop 31's rehearsal saw it 0.2 s later).
        gone = time.monotonic() + 60
        while victim in _session_processes(session, "VerifyWorker"):
            assert time.monotonic() < gone, f"worker {victim} still runs 60 s after SIGKILL"
            time.sleep(0.1)
        seen: set[int] = set()
        while driver.poll() is None and time.monotonic() < deadline:
            seen |= _session_processes(session, "VerifyWorker")
            time.sleep(0.2)
        output, _ = driver.communicate(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, output
    got = read_jsonl(out)
    assert [r["row"] for r in got] == list(range(32))  # no row lost, none written twice
    assert [{k: r[k] for k in VERDICT} for r in got] == [verdicts[i % 4] for i in range(32)]
    assert victim not in seen
