"""The CLI's reading commands on a real PostgreSQL run store."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sipdo.cli import app
from sipdo.store import RunStore
from tests.store.conftest import fresh_postgres, postgres_url
from tests.store.runkit import REV, V1, populate

__all__ = ["fresh_postgres", "postgres_url"]  # fixtures shared with the store tests

pytestmark = pytest.mark.postgres
runner = CliRunner()


def test_runs_show_and_export_on_postgres(fresh_postgres: str) -> None:
    with RunStore(fresh_postgres) as store:
        populate(store, "pg-run")
    listed = runner.invoke(app, ["runs", "--db", fresh_postgres])
    assert listed.exit_code == 0, listed.output
    assert "pg-run" in listed.stdout
    shown = runner.invoke(app, ["show", "pg-run", "--db", fresh_postgres])
    assert shown.exit_code == 0, shown.output
    assert "+Handle empty inputs first." in shown.stdout
    exported = runner.invoke(app, ["export", "pg-run", "--format", "eval", "--db", fresh_postgres])
    assert exported.exit_code == 0, exported.output
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["id"] for r in records] == ["add", "rev"]
    assert records[1]["task"] == REV
    sft = runner.invoke(app, ["export", "pg-run", "--format", "sft", "--db", fresh_postgres])
    assert [json.loads(line)["prompt"] for line in sft.stdout.splitlines()] == [V1]
