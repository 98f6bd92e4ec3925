"""``sipdo run`` end to end as a real subprocess: scripted models, real verifiers, real sandbox.

Also the kill test: a run is SIGKILLed mid-flight and ``sipdo run --resume``
finishes it without losing any accepted task or prompt version.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sipdo.cli.run import checkpoint_path
from sipdo.store import RunStore
from tests.cli.conftest import SIPDO, cli_env
from tests.cli.scriptworld import PROMPT, PROMPT_1, PROMPT_2, PROMPT_BAD, run_args, write_world
from tests.store.conftest import fresh_postgres, postgres_url

__all__ = ["fresh_postgres", "postgres_url"]  # fixtures shared with the store tests

pytestmark = pytest.mark.slow

Sipdo = Callable[..., subprocess.CompletedProcess[str]]


def test_full_run_then_show_export_and_resume_of_a_finished_run(
    sipdo: Sipdo, db_url: str, tmp_path: Path
) -> None:
    paths = write_world(tmp_path / "world")
    done = sipdo(*run_args(paths, db_url, "--run-id", "r1"))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in (
        "iteration 1 (difficulty 2)",
        "rejected [range bounds]: duplicate of an earlier task",
        "accepted [range bounds]: verified",
        "learner failed",
        "rejected by the no-regression gate",
        "run ended: iterations",
        "stopped: iterations   tasks accepted 2, rejected 2",
    ):
        assert line in out, line
    assert "RULE-DEDUPE" in out  # the best prompt is printed
    assert re.search(r"^\[\d\d:\d\d\] iteration 1 \(difficulty 2\)$", out, re.MULTILINE)

    with RunStore(db_url) as store:
        run = store.get_run("r1")
        lineage = store.prompt_lineage("r1")
        tasks = store.tasks("r1")
        usage = store.usage("r1")
    assert (run.status, run.stop_reason, run.best_prompt) == ("finished", "iterations", PROMPT_2)
    assert run.config["cli"]["iterations"] == 2
    assert [(p.text, p.accepted) for p in lineage] == [
        (PROMPT, True),
        (PROMPT_1, True),
        (PROMPT_BAD, False),
        (PROMPT_2, True),
    ]
    assert "+RULE-DEDUPE: keep the first occurrence of each value." in lineage[3].diff
    verified = {t.task["entry_point"]: t for t in tasks if t.status != "rejected"}
    assert verified["run_length_encode"].status == "seed"
    clamp, dedupe = verified["clamp"], verified["dedupe_keep_order"]
    assert (clamp.status, dedupe.status) == ("accepted", "accepted")
    assert clamp.first_failed_version == lineage[0].version_id
    assert clamp.first_solved_version == lineage[1].version_id
    assert dedupe.first_solved_version == lineage[3].version_id
    assert [v.status for v in clamp.verdicts] == ["accepted"]
    duplicates = [t for t in tasks if t.status == "rejected"]
    assert sorted(t.task["entry_point"] for t in duplicates) == ["clamp", "dedupe_keep_order"]
    assert all(t.reason == "duplicate of an earlier task" for t in duplicates)
    assert {u.role for u in usage} == {"learner", "generator", "checker", "optimizer"}
    assert checkpoint_path(db_url).is_file()

    exported = {}
    for fmt in ("eval", "sft", "dpo", "textual-reward"):
        target = tmp_path / f"{fmt}.jsonl"
        result = sipdo("export", "r1", "--format", fmt, "-o", str(target), "--db", db_url)
        assert result.returncode == 0, result.stderr
        exported[fmt] = [json.loads(line) for line in target.read_text().splitlines()]
    assert {r["task"]["entry_point"] for r in exported["eval"]} == {
        "run_length_encode",
        "clamp",
        "dedupe_keep_order",
    }
    assert all("return None" not in r["answer"] for r in exported["sft"])
    assert {r["prompt"] for r in exported["sft"]} >= {PROMPT_1, PROMPT_2}
    prompt_pairs = [(r["chosen"], r["rejected"]) for r in exported["dpo"] if r["kind"] == "prompt"]
    assert prompt_pairs == [(PROMPT_2, PROMPT_BAD)]
    answer_pairs = [r for r in exported["dpo"] if r["kind"] == "answer"]
    assert answer_pairs
    assert all("return None" in r["rejected"] for r in answer_pairs)
    assert all("return None" not in r["chosen"] for r in answer_pairs)
    rewards = exported["textual-reward"]
    assert any("failed" in r["reward"] and not r["passed"] for r in rewards)
    assert any(r["passed"] for r in rewards)

    shown = sipdo("show", "r1", "--db", db_url)
    assert shown.returncode == 0
    assert "+BREAK everything." in shown.stdout

    again = sipdo("run", "--resume", "r1", "--db", db_url)
    assert again.returncode == 0, again.stderr
    assert "had already finished" in again.stdout
    with RunStore(db_url) as store:
        assert len(store.prompt_lineage("r1")) == 4
        assert store.get_run("r1").status == "finished"  # not reopened by the no-op resume


def _progress(db_url: str, run_id: str) -> tuple[str, list[tuple[str, bool]], set[str]]:
    """(status, prompt versions (id, accepted), accepted task ids) as stored now."""
    with RunStore(db_url) as store:
        try:
            run = store.get_run(run_id)
        except KeyError:
            return "", [], set()
        versions = [(p.version_id, p.accepted) for p in store.prompt_lineage(run_id)]
        accepted = {t.task_id for t in store.tasks(run_id) if t.status == "accepted"}
    return run.status, versions, accepted


def test_sigkill_mid_run_then_resume_loses_nothing(home: Path, db_url: str, tmp_path: Path) -> None:
    paths = write_world(tmp_path / "world", delay_s=0.4)
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(
        [str(SIPDO), *run_args(paths, db_url, "--run-id", "k1")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=cli_env(home),
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            _, versions, _ = _progress(db_url, "k1")
            # Kill once the first refined prompt was accepted (iteration 1 done).
            if sum(ok for _, ok in versions) >= 2:
                break
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            time.sleep(0.1)
        else:
            pytest.fail("the run made no progress in 600 s")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    status, before_versions, before_accepted = _progress(db_url, "k1")
    assert status == "running"  # killed: nobody marked it finished
    assert before_accepted
    assert "run ended" not in (tmp_path / "first.log").read_text()
    listed = subprocess.run(
        [str(SIPDO), "runs", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(home),
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "interrupted" in listed.stdout  # its process is gone: shown as such

    resumed = subprocess.run(
        [str(SIPDO), "run", "--resume", "k1", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=900,
        env=cli_env(home),
        check=False,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    # It continued from the checkpoint: iteration 1 and the seed pass were not redone.
    assert "iteration 1 (" not in resumed.stdout
    assert "run ended: iterations" in resumed.stdout, resumed.stdout + resumed.stderr

    status, after_versions, after_accepted = _progress(db_url, "k1")
    assert status == "finished"
    assert before_accepted <= after_accepted
    assert len(after_accepted) == 2
    for version in before_versions:
        assert version in after_versions  # same id, same acceptance
    with RunStore(db_url) as store:
        run = store.get_run("k1")
        texts = [p.text for p in store.prompt_lineage("k1")]
    assert run.best_prompt == PROMPT_2
    assert texts.count(PROMPT_1) == 1  # the resumed step did not duplicate versions


@pytest.mark.postgres
def test_full_run_on_a_postgres_store(
    sipdo: Sipdo, fresh_postgres: str, tmp_path: Path, home: Path
) -> None:
    paths = write_world(tmp_path / "world")
    done = sipdo(*run_args(paths, fresh_postgres, "--run-id", "pg1", "--iterations", "1"))
    assert done.returncode == 0, done.stdout + done.stderr
    with RunStore(fresh_postgres) as store:
        run = store.get_run("pg1")
        accepted = [t.task["entry_point"] for t in store.tasks("pg1") if t.status == "accepted"]
    assert (run.status, run.best_prompt) == ("finished", PROMPT_1)
    assert accepted == ["clamp"]
    # A non-SQLite store keeps its checkpoints in SIPDO_HOME.
    assert (home / "checkpoints.db").is_file()


def test_resume_after_a_step_saved_its_writes_but_not_the_next_checkpoint(
    sipdo: Sipdo, db_url: str, tmp_path: Path
) -> None:
    """LangGraph saves a checkpoint in the background while the next step runs: a
    kill can leave a step's writes saved and the checkpoint after them not. That
    state has no ``next`` node, and is not finished: the resume goes on."""
    paths = write_world(tmp_path / "world")
    done = sipdo(*run_args(paths, db_url, "--run-id", "w1"))
    assert done.returncode == 0, done.stdout + done.stderr
    # Cut the checkpoint history back to the first prompt promotion's step: its
    # writes stay, everything saved after them goes.
    with sqlite3.connect(checkpoint_path(db_url)) as db:
        (cut,) = db.execute(
            "SELECT min(checkpoint_id) FROM writes WHERE channel = 'branch:to:approve'"
        ).fetchone()
        assert cut is not None
        db.execute("DELETE FROM checkpoints WHERE checkpoint_id > ?", (cut,))
        db.execute("DELETE FROM writes WHERE checkpoint_id > ?", (cut,))
    with RunStore(db_url) as store:  # as a killed run leaves it: running, its process gone
        store.mark_running("w1", {"host": socket.gethostname(), "pid": 2**22 + 1, "start": 1})

    resumed = sipdo("run", "--resume", "w1", "--db", db_url)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "had already finished" not in resumed.stdout
    assert "iteration 2 (" in resumed.stdout
    assert "run ended: iterations" in resumed.stdout
    with RunStore(db_url) as store:
        run = store.get_run("w1")
        texts = [p.text for p in store.prompt_lineage("w1")]
    assert (run.status, run.best_prompt) == ("finished", PROMPT_2)
    assert texts == [PROMPT, PROMPT_1, PROMPT_BAD, PROMPT_2]  # nothing recorded twice


def test_sigkill_mid_optimizer_step_resumes_to_the_same_outcome(
    home: Path, db_url: str, tmp_path: Path
) -> None:
    """Killed while a strategy step is evaluating its candidate; the resumed run replays
    the step's journal and ends with the prompt an uninterrupted run promotes."""
    paths = write_world(tmp_path / "world", delay_s=0.4)
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(
        [str(SIPDO), *run_args(paths, db_url, "--run-id", "k2")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=cli_env(home),
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with RunStore(db_url) as store:
                try:
                    lineage = store.prompt_lineage("k2")
                except KeyError:
                    lineage = []
            # A candidate is recorded when its evaluation starts and re-recorded with the
            # decision: kill in between, in the middle of the step.
            if any(p.feedback == "being evaluated" for p in lineage):
                break
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            time.sleep(0.05)
        else:
            pytest.fail("no optimizer step started in 600 s")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    resumed = subprocess.run(
        [str(SIPDO), "run", "--resume", "k2", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=900,
        env=cli_env(home),
        check=False,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    with RunStore(db_url) as store:
        run = store.get_run("k2")
        lineage = store.prompt_lineage("k2")
    # what the uninterrupted run promotes
    assert run.best_prompt == PROMPT_2, resumed.stdout + resumed.stderr
    texts = [p.text for p in lineage]
    assert len(texts) == len(set(texts))  # no candidate recorded twice
    assert all(p.feedback != "being evaluated" for p in lineage)  # every one was decided
