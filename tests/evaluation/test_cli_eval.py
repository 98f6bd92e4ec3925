"""``sipdo eval`` / ``sipdo evals`` as real subprocesses: scripted model, real sandbox and store.

Includes the kill test: an eval SIGKILLed mid-flight is run again with the same
command and does not solve the samples it had already stored.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sipdo.evaluation import load_benchmark
from sipdo.store import RunStore
from tests.evaluation.helpers import ABS, ANSWERS, DOUBLE, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from sipdo.cli import main; main()"]


def env(home: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("SIPDO_")}
    return out | {"SIPDO_HOME": str(home), "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}


def sipdo(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env=env(home),
        cwd=ROOT,
        timeout=900,
        check=False,
    )


def rules(path: Path, answers: dict[str, str], delay_s: float = 0.0) -> str:
    """A ``scripted:`` model answering each task by its entry point."""
    script = {
        "delay_s": delay_s,
        "rules": [{"match": f"def {entry}(", "response": text} for entry, text in answers.items()],
    }
    path.write_text(json.dumps(script), "utf-8")
    return f"scripted:{path}"


def test_eval_prints_both_gradings_disagreements_and_exports(tmp_path: Path) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [ABS.model_dump(), DOUBLE.model_dump()])
    (tmp_path / "prompt.txt").write_text("Write exact code.", "utf-8")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    model = rules(tmp_path / "model.json", ANSWERS)
    out = tmp_path / "results.jsonl"
    done = sipdo(
        tmp_path,
        "eval",
        "--tasks",
        str(tasks),
        "--prompt",
        f"@{tmp_path / 'prompt.txt'}",
        "--model",
        model,
        "--sandbox",
        "process",
        "--db",
        db,
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "2 sample(s) to grade" in done.stderr
    assert "cost: 2 model calls" in done.stderr
    text = done.stdout
    assert "base (task's own tests)" in text
    assert "100.0%" in text  # base pass@1
    assert "50.0%" in text  # full pass@1
    assert "1 sample(s) the gradings disagree on" in text
    assert "absval" in text
    assert "spent: 2 model calls" in text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["task_id"], r["base_passed"], r["full_passed"]) for r in rows) == [
        ("absval", True, False),
        ("double", True, True),
    ]
    listed = sipdo(tmp_path, "evals", "list", "--db", db)
    assert listed.returncode == 0
    assert "finished" in listed.stdout
    assert "50.0%" in listed.stdout
    with RunStore(db) as store:
        [ev] = store.list_evals()
    shown = sipdo(tmp_path, "evals", "show", ev.eval_id, "--db", db)
    assert shown.returncode == 0
    assert "temperature=0.0" in shown.stdout
    assert "absval" in shown.stdout


def test_samples_with_bad_rows_exit_1_and_keep_every_row(tmp_path: Path) -> None:
    [task] = load_benchmark("humaneval", limit=1)
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [{"task_id": "HumanEval/0", "solution": task.reference_solution}, "oops", {"x": 1}],
    )
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    done = sipdo(
        tmp_path,
        "eval",
        "--benchmark",
        "humaneval",
        "--limit",
        "1",
        "--samples",
        str(samples),
        "--sandbox",
        "process",
        "--db",
        db,
    )
    assert done.returncode == 1
    assert "line 2: not JSON" in done.stdout
    assert "line 3: no task_id" in done.stdout
    assert "2 row(s) could not be graded" in done.stderr
    with RunStore(db) as store:
        [ev] = store.list_evals()
    exported = sipdo(tmp_path, "evals", "export", ev.eval_id, "--db", db)
    assert len(exported.stdout.splitlines()) == 3  # nothing lost


def test_eval_of_a_runs_version_is_tied_to_it(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with RunStore(db) as store:
        store.create_run("r1", {}, "first prompt")
        store.record_prompt_version("r1", "v0", "first prompt", None, True, {}, "", 0)
        store.record_prompt_version("r1", "v1", "better prompt", "v0", True, {}, "", 1)
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [DOUBLE.model_dump()])
    model = rules(tmp_path / "model.json", ANSWERS)
    base = ["eval", "--tasks", str(tasks), "--model", model, "--sandbox", "process", "--db", db]
    done = sipdo(tmp_path, *base, "--run", "r1", "--version", "initial")
    assert done.returncode == 0, done.stderr
    missing = sipdo(tmp_path, *base, "--run", "r1", "--version", "v9")
    assert missing.returncode == 1
    assert "no prompt version 'v9'; versions: v0, v1, best, initial" in missing.stderr
    both = sipdo(tmp_path, *base, "--run", "r1", "--prompt", "x")
    assert both.returncode == 1
    assert "--prompt TEXT|@FILE or --run RUN_ID" in both.stderr
    with RunStore(db) as store:
        [ev] = store.list_evals(source_run_id="r1")
        assert (ev.source_version, ev.prompt) == ("v0", "first prompt")


def test_sigkill_mid_eval_then_the_same_command_solves_only_the_rest(tmp_path: Path) -> None:
    tasks = load_benchmark("humaneval", limit=6)
    answers = {t.entry_point: f"```python\n{t.reference_solution}\n```" for t in tasks}
    model = rules(tmp_path / "model.json", answers, delay_s=1.0)
    db_file = tmp_path / "runs.db"
    args = [
        "eval",
        "--benchmark",
        "humaneval",
        "--limit",
        "6",
        "--prompt",
        "P",
        "--model",
        model,
        "--sandbox",
        "process",
        "--jobs",
        "1",
        "--db",
        f"sqlite:///{db_file}",
    ]

    def stored() -> dict[str, str]:
        if not db_file.exists():
            return {}
        with sqlite3.connect(db_file) as conn:
            try:
                rows = conn.execute("SELECT task_id, created_at FROM sipdo_eval_results").fetchall()
            except sqlite3.OperationalError:
                return {}
        return dict(rows)

    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(
        [*CLI, *args], stdout=log, stderr=subprocess.STDOUT, env=env(tmp_path), cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 600
        while len(stored()) < 2:
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "no progress in 600 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    before = stored()
    assert 2 <= len(before) < 6
    again = sipdo(tmp_path, *args)
    assert again.returncode == 0, again.stderr
    assert f"{6 - len(before)} sample(s) to grade, {len(before)} kept" in again.stderr
    after = stored()
    assert len(after) == 6
    assert {t: after[t] for t in before} == before  # stored samples were not solved again
    assert f"spent: {6 - len(before)} model calls" in again.stdout
    assert "100.0%" in again.stdout
