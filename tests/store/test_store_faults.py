"""The run store while its database fails for real (slow).

- SQLite: a second process holds the write lock (``BEGIN EXCLUSIVE``), first
  for less than the retry limit, then for longer.
- PostgreSQL: a private cluster (never the shared one) crashes mid-writes and
  comes back; then stays down past the retry limit.
- A full disk: the SQLite store on an 8 MB tmpfs that a filler file fills up.

Each test states what was in flight and asserts what the store holds after:
every write that returned is there once, the one that failed left nothing.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipdo.errors import StoreUnavailableError
from sipdo.retry import RetryPolicy
from sipdo.store import RunStore
from tests.store.pgcluster import Cluster, private_cluster

pytestmark = pytest.mark.slow

HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def _attempt(store: RunStore, n: int, run_id: str = "r") -> None:
    store.record_attempt(run_id, f"t{n}", "v0", "learner", f"answer {n}", n % 2 == 0, 1.0, "ok")


def _hold_lock(db: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


def _new_store(url: str, retry_for_s: float) -> RunStore:
    store = RunStore(url, retry=RetryPolicy(retry_for_s=retry_for_s, backoff_s=0.2))
    store.create_run("r", {}, "p")
    return store


def test_sqlite_locked_by_another_process_for_a_while_is_waited_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """In flight: one attempt write while another process holds the write lock for 5 s;
    each try waits 3 s for the lock, so the first fails ``database is locked``."""
    db = tmp_path / "runs.db"
    with _new_store(f"sqlite:///{db}", retry_for_s=3.0) as store:
        _attempt(store, 1)
        holder = _hold_lock(db, 5.0)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="sipdo.store"):
            _attempt(store, 2)
        elapsed = time.monotonic() - started
        holder.wait(timeout=30)
        assert [a.task_id for a in store.attempts("r")] == ["t1", "t2"]
    assert 4.0 <= elapsed < 15
    assert any("database is locked" in r.getMessage() for r in caplog.records)


def test_sqlite_locked_past_the_limit_stops_cleanly(tmp_path: Path) -> None:
    """In flight: one attempt write while another process holds the write lock for
    60 s, past the 1 s limit: ``StoreUnavailableError``, and the write left nothing."""
    db = tmp_path / "runs.db"
    with _new_store(f"sqlite:///{db}", retry_for_s=1.0) as store:
        _attempt(store, 1)
        holder = _hold_lock(db, 60.0)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="database is locked") as caught:
                _attempt(store, 2)
            assert time.monotonic() - started < 10
            assert "retry limit 1 s" in str(caught.value)
        finally:
            holder.kill()
            holder.wait()
        assert [a.task_id for a in store.attempts("r")] == ["t1"]
        _attempt(store, 2)  # the lock is gone: the same write now goes through, once
        _attempt(store, 2)
        assert [a.task_id for a in store.attempts("r")] == ["t1", "t2"]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with private_cluster() as running:
        yield running


def test_postgres_crash_and_restart_mid_writes_loses_nothing(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    """In flight: a thread writing 120 attempts, one transaction each, while the server
    is crashed (``pg_ctl stop -m immediate``) and started again 2 s later."""
    written: list[int] = []
    errors: list[BaseException] = []
    with _new_store(cluster.url, retry_for_s=60.0) as store:

        def writer() -> None:
            try:
                for n in range(120):
                    _attempt(store, n)
                    written.append(n)
                    time.sleep(0.02)
            except BaseException as exc:
                errors.append(exc)

        with caplog.at_level(logging.WARNING, logger="sipdo.store"):
            thread = threading.Thread(target=writer)
            thread.start()
            while len(written) < 30:
                time.sleep(0.05)
            cluster.crash()
            down_at = len(written)
            time.sleep(2.0)
            cluster.start()
            thread.join(timeout=120)
        assert not errors, errors
        assert 30 <= down_at < 120  # the crash came mid-run
        stored = [a.task_id for a in store.attempts("r")]
    assert stored == [f"t{n}" for n in range(120)]  # each once, in order
    assert any("retry" in r.getMessage() for r in caplog.records)


def test_postgres_down_past_the_limit_then_back(cluster: Cluster) -> None:
    """In flight: one write while the server is stopped, with a 2 s limit; then the server
    comes back and the same store object carries on."""
    with _new_store(cluster.url, retry_for_s=2.0) as store:
        _attempt(store, 1)
        cluster.stop()
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="unavailable") as caught:
            _attempt(store, 2)
        assert time.monotonic() - started < 15
        assert str(cluster.port) in str(caught.value)  # names the database (no password)
        cluster.start()
        assert [a.task_id for a in store.attempts("r")] == ["t1"]
        _attempt(store, 2)
        assert [a.task_id for a in store.attempts("r")] == ["t1", "t2"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs mounted for this test (needs root / CAP_SYS_ADMIN)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
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


def fill(directory: Path) -> Path:
    """Write a file in ``directory`` until its filesystem is full; return it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass  # ENOSPC: full
    finally:
        os.close(fd)
    return filler


def test_full_disk_stops_at_once_and_keeps_the_database_whole(small_disk: Path) -> None:
    """In flight: a large attempt (200 KB answer) written after a filler file took the
    last free block of the store's 8 MB filesystem."""
    db = small_disk / "runs.db"
    with _new_store(f"sqlite:///{db}", retry_for_s=30.0) as store:
        for n in range(5):
            _attempt(store, n)
        filler = fill(small_disk)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="disk is full"):
            store.record_attempt("r", "big", "v0", "learner", "x" * 200_000, True, 1.0, "ok")
        assert time.monotonic() - started < 5  # not retried for 30 s: it would not pass
        filler.unlink()
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert [a.task_id for a in store.attempts("r")] == [f"t{n}" for n in range(5)]
        store.record_attempt("r", "big", "v0", "learner", "x" * 200_000, True, 1.0, "ok")
        assert [a.task_id for a in store.attempts("r")][-1] == "big"
