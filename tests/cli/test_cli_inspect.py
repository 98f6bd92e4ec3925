"""``sipdo runs`` / ``show`` / ``export`` in process, on a store recorded through RunStore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sipdo.cli import app
from sipdo.cli.common import console
from sipdo.store import RunStore
from tests.store.runkit import ADD, REV, RIGHT_ADD, V1, V2, WRONG_ADD, WRONG_REV, populate

runner = CliRunner()


@pytest.fixture
def recorded(db_url: str) -> str:
    with RunStore(db_url) as store:
        populate(store, "run-1")
        store.create_run("run-2", {}, "other prompt")
    return db_url


def test_runs_lists_every_run_with_counts(recorded: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 120)
    result = runner.invoke(app, ["runs", "--db", recorded])
    assert result.exit_code == 0, result.output
    assert "run-1" in result.stdout
    assert "run-2" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "run-1" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    # run, status, started (date part), prompts, accepted, rejected, best, stop
    assert cells[1] == "completed"
    assert cells[3:7] == ["3", "1", "1", "0.50"]


def test_runs_is_readable_at_80_columns(recorded: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 80)
    with RunStore(recorded) as store:
        store.finish_run("run-2", "stopped", "p", "stopped: model backend down " + "x" * 200)
    result = runner.invoke(app, ["runs", "--db", recorded])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if line.lstrip().startswith("run "))
    assert header.split() == ["run", "status", "prompts", "tasks", "best", "stop"]
    row = next(line for line in lines if line.split()[:1] == ["run-1"])
    assert row.split()[1:5] == ["completed", "3", "1/1", "0.50"]
    assert "tasks: accepted/rejected" in result.stdout


def test_runs_on_an_empty_store_says_so(db_url: str) -> None:
    result = runner.invoke(app, ["runs", "--db", db_url])
    assert result.exit_code == 0
    assert "no runs yet" in result.stdout


def test_runs_uses_sipdo_db_from_the_environment(recorded: str) -> None:
    result = runner.invoke(app, ["runs"], env={"SIPDO_DB": recorded})
    assert result.exit_code == 0
    assert "run-1" in result.stdout


def test_show_prints_lineage_diffs_tasks_and_usage(recorded: str) -> None:
    result = runner.invoke(app, ["show", "run-1", "--db", recorded])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "v1 <- v0" in out
    assert "v2 <- v0" in out
    assert "+Handle empty inputs first." in out  # v1's diff
    assert "+You write Python." in out  # v2's diff
    assert "regressed: breaks add" in out
    task_rows = {
        line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 6
    }
    assert "seed" in task_rows["add"]
    assert "v0" in task_rows["add"]
    assert "v1" in task_rows["add"]  # failed at v0, solved at v1
    assert "accepted" in task_rows["rev"]
    assert "rejected" in task_rows["bad"]
    assert "model usage" in out
    assert "generator" in out


@pytest.mark.parametrize("command", [["show", "nope"], ["export", "nope", "--format", "eval"]])
def test_unknown_run_is_a_clean_error(recorded: str, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--db", recorded])
    assert result.exit_code == 1
    assert "error:" in result.stderr
    assert "no run 'nope'" in result.stderr
    assert "Traceback" not in result.output


def _export(db: str, fmt: str, tmp_path: Path) -> list[dict[str, object]]:
    out = tmp_path / f"{fmt}.jsonl"
    result = runner.invoke(app, ["export", "run-1", "--format", fmt, "-o", str(out), "--db", db])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert f"wrote {len(lines)} {fmt} records" in result.stderr
    return [json.loads(line) for line in lines]


def test_export_eval(recorded: str, tmp_path: Path) -> None:
    records = _export(recorded, "eval", tmp_path)
    assert [(r["id"], r["status"]) for r in records] == [("add", "seed"), ("rev", "accepted")]
    assert records[1]["task"] == REV


def test_export_sft(recorded: str, tmp_path: Path) -> None:
    records = _export(recorded, "sft", tmp_path)
    assert [(r["prompt"], r["query"], r["answer"]) for r in records] == [
        (V1, ADD["prompt"], RIGHT_ADD)
    ]


def test_export_dpo(recorded: str, tmp_path: Path) -> None:
    records = _export(recorded, "dpo", tmp_path)
    prompt_pairs = [(r["chosen"], r["rejected"]) for r in records if r["kind"] == "prompt"]
    answer_pairs = {
        (r["task_id"], r["rejected"], r["chosen"]) for r in records if r["kind"] == "answer"
    }
    assert prompt_pairs == [(V1, V2)]
    assert answer_pairs == {
        ("add", WRONG_ADD, RIGHT_ADD),
        ("rev", WRONG_REV, REV["reference_solution"]),
    }


def test_export_textual_reward(recorded: str, tmp_path: Path) -> None:
    records = _export(recorded, "textual-reward", tmp_path)
    assert len(records) == 5
    assert {r["reward"] for r in records} >= {"add(1,2) gave -1", "all tests pass"}
    assert all(set(r) >= {"query", "prompt", "answer", "reward"} for r in records)


def test_export_to_stdout_is_jsonl(recorded: str) -> None:
    result = runner.invoke(app, ["export", "run-1", "--format", "eval", "--db", recorded])
    assert result.exit_code == 0
    ids = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    assert ids == ["add", "rev"]


def test_export_unknown_format_lists_formats_and_writes_nothing(
    recorded: str, tmp_path: Path
) -> None:
    out = tmp_path / "x.jsonl"
    result = runner.invoke(
        app, ["export", "run-1", "--format", "csv", "-o", str(out), "--db", recorded]
    )
    assert result.exit_code == 1
    assert "eval, sft, dpo, textual-reward" in result.stderr
    assert not out.exists()


def test_export_to_an_unwritable_place_is_a_clean_error(recorded: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(
        app, ["export", "run-1", "-o", str(blocker / "out.jsonl"), "--db", recorded]
    )
    assert result.exit_code == 1
    assert "cannot write" in result.stderr
    assert blocker.read_text() == "x"


def test_bad_database_url_is_a_clean_error(home: Path) -> None:
    result = runner.invoke(app, ["runs", "--db", "not a url"])
    assert result.exit_code == 1
    assert "not a database URL" in result.stderr


def test_default_store_lives_in_sipdo_home(home: Path) -> None:
    result = runner.invoke(app, ["runs"])
    assert result.exit_code == 0
    assert (home / "runs.db").is_file()


def test_sft_export_mentions_wrong_answers_nowhere(recorded: str, tmp_path: Path) -> None:
    records = _export(recorded, "sft", tmp_path)
    assert all(r["answer"] != WRONG_ADD for r in records)
