"""``sipdo run`` meeting real infrastructure faults mid-run, then ``--resume`` (slow).

Every role talks over real HTTP to ``tests.cli.rule_server`` (its own process,
answering the scripts of ``tests.cli.scriptworld``); the run store and the
checkpoint file are real SQLite files. Faults, injected once iteration 1's
refined prompt is accepted (so a finished iteration is on record and iteration 2
is in flight):

- the model server SIGKILLed (down), or SIGSTOPped (accepts connections, never
  answers): the run retries for ``--model-retry-for`` seconds, stops with exit 75
  naming the backend and printing the exact resume command; that command, run
  once the server is back, finishes the run;
- a second process holding the checkpoint file's write lock for a few seconds
  (waited out: the run finishes) or past ``SIPDO_STORE_RETRY_S`` (exit 75, resumed
  once the lock is gone);
- the disk holding the run store and checkpoints (a small tmpfs) filling up: exit 75
  at once, resumed once space is freed;
- the Docker engine under the sandbox (a private ``dockerd``) SIGKILLed with its
  containerd: verifications in flight are waited out and made again once it is
  back (the run finishes), or, past ``SIPDO_SANDBOX_RETRY_S``, exit 75 and resumed.

Each resumed run must end exactly as an uninterrupted one: the same prompt
lineage (ids and acceptance, no duplicates), the same accepted tasks, the same
attempts (task, prompt version, role, passed) and the same model usage per
role in the store (nothing lost, nothing double counted).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sipdo.cli.run import checkpoint_path
from sipdo.store import RunStore
from tests.cli.conftest import ROOT, SIPDO, cli_env
from tests.cli.scriptworld import PROMPT, PROMPT_1, PROMPT_2, PROMPT_BAD, write_world
from tests.dockerd import PrivateDockerd, private_dockerd, running_private_dockerd
from tests.store.test_store_faults import fill

pytestmark = pytest.mark.slow
__all__ = ["private_dockerd", "running_private_dockerd"]  # fixtures, used by name

ROLES = ("learner", "generator", "checker", "optimizer")
ROLE_FLAGS = ("--model", "--generator-model", "--checker-model", "--optimizer-model")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def model_server(directory: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """``tests.cli.rule_server`` on ``port`` as a child process; killed on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.cli.rule_server", str(port), str(directory)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=30)


def http_run_args(world: Path, port: int, db: str, run_id: str, *extra: str) -> list[str]:
    models: list[str] = []
    for flag, role in zip(ROLE_FLAGS, ROLES, strict=True):
        models += [flag, f"openai:{role}@http://127.0.0.1:{port}/v1"]
    return [
        "run",
        "--prompt",
        PROMPT,
        "--seeds",
        str(world / "seeds.jsonl"),
        *models,
        "--iterations",
        "2",
        "--sandbox",
        "process",
        "--db",
        db,
        "--run-id",
        run_id,
        *extra,
    ]


def outcome(db: str, run_id: str) -> dict[str, object]:
    """What an interrupted and resumed run must share with an uninterrupted one."""
    with RunStore(db) as store:
        run = store.get_run(run_id)
        lineage = store.prompt_lineage(run_id)
        tasks = store.tasks(run_id)
        usage = store.usage(run_id)
        attempts = store.attempts(run_id)
    calls: dict[str, int] = {}
    for u in usage:
        calls[u.role] = calls.get(u.role, 0) + u.calls
    return {
        "status": run.status,
        "best": run.best_prompt,
        "lineage": [(p.text, p.accepted) for p in lineage],
        "accepted": sorted(t.task["entry_point"] for t in tasks if t.status == "accepted"),
        "calls": calls,
        "attempts": sorted((a.task_id, a.prompt_version_id, a.role, a.passed) for a in attempts),
    }


EXPECTED_LINEAGE = [(PROMPT, True), (PROMPT_1, True), (PROMPT_BAD, False), (PROMPT_2, True)]


def accepted_versions(db: str, run_id: str) -> int:
    with RunStore(db) as store:
        try:
            return sum(p.accepted for p in store.prompt_lineage(run_id))
        except KeyError:
            return 0


def start_run(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            [str(SIPDO), *args], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )


def wait_for(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], log: Path, timeout: float = 600
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.1)


def resume_command(text: str, run_id: str) -> list[str]:
    """The resume command the stopped run printed, as arguments for the real console script."""
    found = re.search(rf"^\s*(sipdo run --resume {run_id}\b.*)$", text, re.MULTILINE)
    assert found, text
    words = shlex.split(found.group(1))
    return [str(SIPDO), *words[1:]]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The outcome of the same run over HTTP with nothing failing."""
    base = tmp_path_factory.mktemp("reference")
    world = base / "world"
    write_world(world)
    home = base / "home"
    db = f"sqlite:///{base / 'runs.db'}"
    port = _free_port()
    with model_server(world, port):
        done = subprocess.run(
            [str(SIPDO), *http_run_args(world, port, db, "ref")],
            capture_output=True,
            text=True,
            timeout=900,
            env=cli_env(home),
            cwd=ROOT,
            check=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    found = outcome(db, "ref")
    assert found["lineage"] == EXPECTED_LINEAGE
    assert found["accepted"] == ["clamp", "dedupe_keep_order"]
    assert found["status"] == "finished"
    return found


@pytest.mark.parametrize("fault", ["killed", "hung"])
def test_model_server_fault_stops_resumably_and_resume_ends_as_uninterrupted(
    fault: str, reference: dict[str, object], home: Path, db_url: str, tmp_path: Path
) -> None:
    world = tmp_path / "world"
    write_world(world, delay_s=0.2)
    port = _free_port()
    log = tmp_path / "first.log"
    args = http_run_args(world, port, db_url, "m1", "--model-retry-for", "3")
    args += ["--model-timeout", "2", "--model-timeout", "generator=5"]
    with model_server(world, port) as server:
        proc = start_run(args, cli_env(home), log)
        try:
            wait_for(proc, lambda: accepted_versions(db_url, "m1") >= 2, log)
            # In flight: iteration 2 (generator / checker / learner calls).
            served = len((world / "served.log").read_text().splitlines())
            if fault == "killed":
                server.send_signal(signal.SIGKILL)
            else:
                server.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            proc.wait(timeout=120)
            stopped_after = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
        text = log.read_text()
        assert proc.returncode == 75, text
        # Retried for --model-retry-for (3 s; a hung server: one timeout per attempt).
        assert stopped_after < 60, stopped_after
        backend = f"http://127.0.0.1:{port}/v1"
        assert "model backend" in text, text
        assert backend in text, text
        assert "gave up after" in text
        command = resume_command(text, "m1")
        assert command[1:] == ["run", "--resume", "m1", "--db", db_url]
        with RunStore(db_url) as store:
            run = store.get_run("m1")
            before = [(p.version_id, p.accepted) for p in store.prompt_lineage("m1")]
        assert run.status == "stopped"
        assert "model backend" in (run.stop_reason or "")
        assert served >= 1
        if fault == "hung":
            server.send_signal(signal.SIGCONT)
            resumed = subprocess.run(
                command, capture_output=True, text=True, timeout=900, env=cli_env(home), cwd=ROOT
            )
    if fault == "killed":
        with model_server(world, port):  # the server back on the same port
            resumed = subprocess.run(
                command, capture_output=True, text=True, timeout=900, env=cli_env(home), cwd=ROOT
            )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "iteration 1 (" not in resumed.stdout  # continued, not restarted
    assert "run ended: iterations" in resumed.stdout
    after = outcome(db_url, "m1")
    assert after == reference
    with RunStore(db_url) as store:
        ids = [(p.version_id, p.accepted) for p in store.prompt_lineage("m1")]
    assert ids[: len(before)] == before  # nothing recorded before the fault was rewritten
    # The stored options came back with --resume: the same limits reach the clients.
    with RunStore(db_url) as store:
        cli = store.get_run("m1").config["cli"]
    assert cli["model_timeout"] == {"*": 2.0, "generator": 5.0}
    assert cli["model_retry_for"] == 3.0


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
if sys.argv[2] == "stdin":
    sys.stdin.readline()
else:
    time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def hold_lock(db: Path, seconds: str) -> subprocess.Popen[str]:
    """A second process holding ``db``'s write lock for ``seconds`` (or until its stdin
    gets a line, with ``"stdin"``)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db), seconds],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_checkpoint_file_locked_for_a_while_is_waited_out(
    reference: dict[str, object], home: Path, db_url: str, tmp_path: Path
) -> None:
    world = tmp_path / "world"
    write_world(world, delay_s=0.2)
    port = _free_port()
    log = tmp_path / "run.log"
    env = {**cli_env(home), "SIPDO_STORE_RETRY_S": "60"}
    with model_server(world, port):
        proc = start_run(http_run_args(world, port, db_url, "l1"), env, log)
        try:
            wait_for(proc, lambda: accepted_versions(db_url, "l1") >= 2, log)
            holder = hold_lock(checkpoint_path(db_url), "8")
            holder.wait(timeout=60)
            proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "database is locked" in text  # it did meet the lock, and waited
    assert outcome(db_url, "l1") == reference


def test_checkpoint_file_locked_past_the_limit_stops_then_resumes(
    reference: dict[str, object], home: Path, db_url: str, tmp_path: Path
) -> None:
    world = tmp_path / "world"
    write_world(world, delay_s=0.2)
    port = _free_port()
    log = tmp_path / "run.log"
    env = {**cli_env(home), "SIPDO_STORE_RETRY_S": "2"}
    ckpt = checkpoint_path(db_url)
    with model_server(world, port):
        proc = start_run(http_run_args(world, port, db_url, "l2"), env, log)
        try:
            wait_for(proc, lambda: accepted_versions(db_url, "l2") >= 2, log)
            holder = hold_lock(ckpt, "stdin")
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        text = log.read_text()
        assert proc.returncode == 75, text
        assert f"checkpoint file {ckpt}" in text
        assert "database is locked" in text
        assert holder.stdin is not None
        holder.stdin.write("go\n")
        holder.stdin.close()
        holder.wait(timeout=30)
        with RunStore(db_url) as store:
            assert store.get_run("l2").status == "stopped"
        resumed = subprocess.run(
            resume_command(text, "l2"),
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
            cwd=ROOT,
        )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert outcome(db_url, "l2") == reference


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs for this test (needs root / CAP_SYS_ADMIN)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs: {done.stderr.strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_mid_run_stops_at_once_then_resumes(
    reference: dict[str, object], small_disk: Path, tmp_path: Path
) -> None:
    world = tmp_path / "world"
    write_world(world, delay_s=0.2)
    home = small_disk / "home"
    db = f"sqlite:///{small_disk / 'runs.db'}"
    port = _free_port()
    log = tmp_path / "run.log"
    env = cli_env(home)
    with model_server(world, port):
        proc = start_run(http_run_args(world, port, db, "d1"), env, log)
        try:
            wait_for(proc, lambda: accepted_versions(db, "d1") >= 2, log)
            filler = fill(small_disk)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        text = log.read_text()
        assert proc.returncode == 75, text
        assert "disk is full" in text
        # Both databases are whole: SQLite's own check passes on each.
        for path in (small_disk / "runs.db", checkpoint_path(db)):
            with sqlite3.connect(path) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        filler.unlink()
        resumed = subprocess.run(
            resume_command(text, "d1"), capture_output=True, text=True, timeout=900, env=env
        )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert outcome(db, "d1") == reference


def _sandbox_containers(engine: PrivateDockerd) -> list[str]:
    client = engine.client()
    try:
        return [c.id for c in client.containers.list(all=True)]
    finally:
        client.close()


@pytest.mark.docker
def test_docker_engine_killed_mid_run_is_waited_out(
    reference: dict[str, object],
    running_private_dockerd: PrivateDockerd,
    home: Path,
    db_url: str,
    tmp_path: Path,
) -> None:
    engine = running_private_dockerd
    world = tmp_path / "world"
    write_world(world, delay_s=0.2)
    port = _free_port()
    log = tmp_path / "run.log"
    env = {**cli_env(home), "DOCKER_HOST": engine.host, "SIPDO_SANDBOX_RETRY_S": "120"}
    args = [*http_run_args(world, port, db_url, "e1"), "--sandbox", "docker"]
    with model_server(world, port):
        proc = start_run(args, env, log)
        try:
            wait_for(proc, lambda: accepted_versions(db_url, "e1") >= 2, log)
            engine.stop(kill=True)  # a crash: dockerd and its containerd, mid-iteration 2
            time.sleep(6)
            assert proc.poll() is None, log.read_text()  # waiting, not failing
            engine.start()
            proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert proc.returncode == 0, text
    assert "verifying again in" in text  # it met the dead engine and waited for it
    assert outcome(db_url, "e1") == reference  # nothing graded as wrong code
    assert _sandbox_containers(engine) == []  # the dead engine's containers are gone too


@pytest.mark.docker
def test_docker_engine_down_past_the_limit_stops_then_resumes(
    reference: dict[str, object],
    running_private_dockerd: PrivateDockerd,
    home: Path,
    db_url: str,
    tmp_path: Path,
) -> None:
    engine = running_private_dockerd
    world = tmp_path / "world"
    write_world(world, delay_s=0.2)
    port = _free_port()
    log = tmp_path / "run.log"
    env = {**cli_env(home), "DOCKER_HOST": engine.host, "SIPDO_SANDBOX_RETRY_S": "3"}
    args = [*http_run_args(world, port, db_url, "e2"), "--sandbox", "docker"]
    with model_server(world, port):
        proc = start_run(args, env, log)
        try:
            wait_for(proc, lambda: accepted_versions(db_url, "e2") >= 2, log)
            engine.stop(kill=True)
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
            engine.start()
        text = log.read_text()
        assert proc.returncode == 75, text
        assert "sandbox engine still failing" in text
        with RunStore(db_url) as store:
            assert store.get_run("e2").status == "stopped"
        resumed = subprocess.run(
            resume_command(text, "e2"),
            capture_output=True,
            text=True,
            timeout=900,
            env=env,
            cwd=ROOT,
        )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert outcome(db_url, "e2") == reference
