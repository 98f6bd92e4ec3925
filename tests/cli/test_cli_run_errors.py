"""``sipdo run`` refuses bad input with one clear line, exit 1, and records nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sipdo.cli import app
from sipdo.cli.run import DEFAULT_PROMPT
from sipdo.store import RunStore
from tests.cli.scriptworld import SEEDS

runner = CliRunner()


def _run(db: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["run", "--db", db, "--model", "scripted:/nonexistent.json", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr


def _no_runs(db: str) -> bool:
    with RunStore(db) as store:
        return store.list_runs() == []


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_an_empty_prompt_is_refused(db_url: str) -> None:
    code, err = _run(db_url, "--prompt", "  ")
    assert code == 1
    assert "prompt to optimize is empty" in err
    assert _no_runs(db_url)


def test_without_a_prompt_the_default_prompt_is_optimized(db_url: str, tmp_path: Path) -> None:
    script = tmp_path / "empty.json"
    script.write_text("[]")  # the first model call fails: the run stops right after setup
    result = runner.invoke(app, ["run", "--db", db_url, "--model", f"scripted:{script}"])
    assert result.exit_code == 1
    assert "no --prompt given" in result.stdout
    assert "only 0 responses were scripted" in result.stderr
    with RunStore(db_url) as store:
        (run,) = store.list_runs()
        seeds = [t for t in store.tasks(run.run_id) if t.status == "seed"]
    assert run.initial_prompt == DEFAULT_PROMPT
    assert run.status == "failed"
    assert len(seeds) >= 5  # the code domain's shipped seeds


def test_prompt_and_prompt_file_exclude_each_other(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("x")
    code, err = _run(db_url, "--prompt", "x", "--prompt-file", str(tmp_path / "p.txt"))
    assert code == 1
    assert "not both" in err


def test_missing_prompt_file(db_url: str, tmp_path: Path) -> None:
    code, err = _run(db_url, "--prompt-file", str(tmp_path / "missing.txt"))
    assert code == 1
    assert "cannot read prompt file" in err
    assert _no_runs(db_url)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"entry_point": "f"', "{}"], "line 1: invalid JSON"),
        ([json.dumps(SEEDS[0]), "[1, 2]"], "line 2: a seed task must be a JSON object"),
        (["", "  "], "no seed tasks"),
        ([json.dumps({"prompt": "def f(): ..."})], "seed task 1: invalid code task"),
    ],
)
def test_bad_seed_files(db_url: str, tmp_path: Path, lines: list[str], message: str) -> None:
    seeds = _jsonl(tmp_path / "seeds.jsonl", lines)
    code, err = _run(db_url, "--prompt", "p", "--seeds", str(seeds))
    assert code == 1
    assert message in err
    assert _no_runs(db_url)


def test_unknown_sandbox_kind(db_url: str) -> None:
    code, err = _run(db_url, "--prompt", "p", "--sandbox", "vm")
    assert code == 1
    assert "auto, docker, process" in err


@pytest.mark.parametrize(
    ("flag", "value", "listed"),
    [
        ("--domain", "poetry", "code"),
        ("--strategy", "magic", "sipdo"),
        ("--gate", "lenient", "pareto, statistical, strict"),
    ],
)
def test_unknown_plugins_list_the_known_ones(
    db_url: str, flag: str, value: str, listed: str
) -> None:
    code, err = _run(db_url, "--prompt", "p", flag, value)
    assert code == 1
    assert value in err
    assert listed in err
    assert _no_runs(db_url)


def test_resume_of_an_unknown_run(db_url: str) -> None:
    code, err = _run(db_url, "--resume", "ghost")
    assert code == 1
    assert "no run 'ghost'" in err


def test_resume_takes_no_new_prompt(db_url: str) -> None:
    code, err = _run(db_url, "--resume", "r", "--prompt", "p")
    assert code == 1
    assert "--resume continues a run as it was" in err


def test_an_existing_run_id_is_not_overwritten(db_url: str) -> None:
    with RunStore(db_url) as store:
        store.create_run("taken", {"mine": True}, "original")
    code, err = _run(db_url, "--prompt", "p", "--run-id", "taken")
    assert code == 1
    assert "--resume taken" in err
    with RunStore(db_url) as store:
        run = store.get_run("taken")
    assert (run.initial_prompt, run.config) == ("original", {"mine": True})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read model script"),
        ('"a string"', "a JSON list or object"),
        ('{"rules": [{"match": 3, "response": "x"}]}', "'match' must be"),
        ('{"rules": [{"match": "x"}]}', "needs a 'response'"),
        ('{"delay_s": -1, "responses": []}', "'delay_s'"),
    ],
)
def test_bad_model_scripts_fail_cleanly(
    db_url: str, tmp_path: Path, content: str, message: str
) -> None:
    script = tmp_path / "script.json"
    script.write_text(content)
    result = runner.invoke(
        app, ["run", "--db", db_url, "--prompt", "p", "--model", f"scripted:{script}"]
    )
    assert result.exit_code == 1
    assert message in result.stderr
    with RunStore(db_url) as store:
        (run,) = store.list_runs()
    # The run was recorded before the model was loaded; it says why it failed.
    assert run.status == "failed"
    assert message in (run.stop_reason or "")


def test_an_unexpected_failure_is_one_line_exit_2_and_marks_the_run(
    db_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "bad-type.json"
    script.write_text("[5, 5, 5, 5, 5, 5, 5, 5, 5, 5]")  # ScriptedChatModel rejects an int reply
    result = runner.invoke(
        app, ["run", "--db", db_url, "--prompt", "p", "--model", f"scripted:{script}"]
    )
    assert result.exit_code == 2
    assert "unexpected TypeError" in result.stderr
    assert "SIPDO_DEBUG=1" in result.stderr
    assert "Traceback" not in result.output
    with RunStore(db_url) as store:
        (run,) = store.list_runs()
    assert run.status == "failed"
