"""``sipdo report`` on bad input: each a clear ``error:`` line and exit code 1."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sipdo.cli import app
from sipdo.store import RunStore
from tests.store.conftest import fresh_postgres, postgres_url
from tests.store.runkit import populate

__all__ = ["fresh_postgres", "postgres_url"]  # fixtures shared with the store tests

runner = CliRunner()


@pytest.fixture
def recorded(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with RunStore(url) as store:
        populate(store, "run-1")
    return url


def test_a_recorded_run_gives_a_page(recorded: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", "run-1", "--db", recorded, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    page = out.read_text("utf-8")
    assert "regressed: breaks add" in page  # why v2 was not promoted
    assert "Sandbox time: not recorded" in page  # no checkpoint next to this store
    assert "No held-out evaluation recorded" in page


def test_unknown_run_id(recorded: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", "no-such-run", "--db", recorded, "-o", str(out)])
    assert result.exit_code == 1
    assert "no run 'no-such-run'" in result.output
    assert not out.exists()


def test_a_run_that_recorded_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with RunStore(url) as store:
        store.create_run("empty", {}, "a prompt")
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", "empty", "--db", url, "-o", str(out)])
    assert result.exit_code == 1
    assert "has recorded nothing yet" in result.output
    assert not out.exists()


def test_a_sqlite_store_that_does_not_exist_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "runs.db"
    result = runner.invoke(app, ["report", "r", "--db", f"sqlite:///{missing}"])
    assert result.exit_code == 1
    assert f"no run store at {missing}" in result.output
    assert not missing.parent.exists()


def test_an_unreachable_postgresql_server(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://sipdo:secret@127.0.0.1:{port}/sipdo"
    result = runner.invoke(app, ["report", "r", "--db", url, "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert "cannot open the run store" in result.output
    assert "secret" not in result.output
    assert not (tmp_path / "r.html").exists()


def test_an_unwritable_output(recorded: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(
        app,
        ["report", "run-1", "--db", recorded, "-o", str(blocker / "r.html")],
    )
    assert result.exit_code == 1
    assert "cannot write the report" in result.output


def test_recorded_heldout_points_are_tabled_and_summed_up(recorded: str) -> None:
    from dataclasses import replace

    from sipdo.report import collect, render_html
    from sipdo.report.heldout import heldout_points

    history = [
        {"kind": "holdout", "iteration": 0, "version_id": "v0", "passed": 3, "total": 8},
        {"kind": "holdout", "iteration": 1, "version_id": "v1", "passed": 5, "total": 8},
    ]
    with RunStore(recorded) as store:
        data = collect(store, "run-1")
    points = tuple(heldout_points(None, "run-1", {"history": history}))
    page = render_html(replace(data, heldout=points))
    assert 'id="heldout-2"' in page
    assert "37.5% → 62.5%" in page
    assert "No held-out evaluation recorded" not in page


@pytest.mark.postgres
def test_a_run_on_postgresql_gives_a_page(fresh_postgres: str, tmp_path: Path) -> None:
    with RunStore(fresh_postgres) as store:
        populate(store, "pg-run")
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", "pg-run", "--db", fresh_postgres, "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text("utf-8")
    assert "regressed: breaks add" in page
    assert "pg-run" in page
