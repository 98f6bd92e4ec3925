"""A run's recorded owner tells whether a ``running`` run is really still running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from sipdo.cli import app
from sipdo.cli.owner import alive, shown_status, this_process
from sipdo.store import RunStore
from sipdo.store.records import RunRecord

RUN = RunRecord("r", "running", {}, "p", None, None, datetime.now(UTC), None)


def test_this_process_is_alive() -> None:
    me = this_process()
    assert me["pid"] == os.getpid()
    assert alive(me) is True
    assert shown_status(replace(RUN, config={"owner": me})) == "running"


def test_a_dead_process_is_interrupted() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone = {"host": socket.gethostname(), "pid": int(child.stdout), "start": None}
    assert alive(gone) is False
    assert shown_status(replace(RUN, config={"owner": gone})) == "interrupted"


def test_a_reused_pid_is_not_the_owner() -> None:
    me = {**this_process(), "start": 1}  # same pid, another start time
    assert alive(me) is False


def test_what_cannot_be_told_from_here_keeps_the_stored_status() -> None:
    elsewhere = {"host": "another-host.example", "pid": os.getpid(), "start": None}
    for owner in (elsewhere, None, {"host": socket.gethostname(), "pid": "x"}):
        assert alive(owner) is None
        assert shown_status(replace(RUN, config={"owner": owner})) == "running"
    finished = replace(RUN, status="finished", config={"owner": elsewhere})
    assert shown_status(finished) == "finished"


def test_resume_refuses_a_run_its_live_owner_is_still_running(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with RunStore(db) as store:
        store.create_run("busy", {"cli": {}}, "p")
        store.mark_running("busy", this_process())  # this test process: alive
    result = CliRunner().invoke(app, ["run", "--resume", "busy", "--db", db])
    assert result.exit_code != 0
    assert "is being run by process" in result.output
    with RunStore(db) as store:
        assert store.get_run("busy").status == "running"  # untouched
