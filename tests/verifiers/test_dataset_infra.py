"""Infrastructure trouble is retried or reported as such, never graded as wrong code.

The faults are injected around the real process backend: a sandbox whose
first runs raise (an engine that is down), and one whose first runs come back
killed by a signal with no output (a container killed from outside), which
is what a run looks like when its engine restarts under it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sipdo.errors import SandboxUnavailableError
from sipdo.sandbox import ExecResult, Job, Sandbox
from sipdo.verifiers import VerifierConfig, verify_dataset
from tests.verifiers.datasetkit import TWICE, WEAK, read_jsonl, write_jsonl

LIGHT = VerifierConfig(n_standard=20, n_extended=30, max_mutants=10)


class Faulty(Sandbox):
    """The real ``inner`` sandbox, except that the first ``n`` runs fail as ``how`` says."""

    def __init__(self, inner: Sandbox, n: int, how: str) -> None:
        super().__init__(limits=inner.limits, max_concurrency=4)
        self.inner, self.left, self.how = inner, n, how
        self.isolation = inner.isolation
        self._lock = threading.Lock()

    def _execute(self, job: Job) -> ExecResult:
        with self._lock:
            fail = self.left > 0
            self.left -= fail
        if fail and self.how == "raise":
            raise SandboxUnavailableError("engine not answering (injected)")
        if fail:
            return ExecResult(exit_code=137, stdout="", stderr="", duration_s=0.1)
        return self.inner.run(job.files, job.command, stdin=job.stdin, limits=job.limits)


def _one(
    tmp_path: Path, sandbox: Sandbox, rows: list[object], **kw: object
) -> list[dict[str, object]]:
    tasks = write_jsonl(tmp_path / "t.jsonl", rows)
    out = tmp_path / "v.jsonl"
    verify_dataset(tasks, output=out, sandbox=sandbox, jobs=1, config=LIGHT, **kw)
    return read_jsonl(out)


def test_a_down_engine_is_retried(tmp_path: Path, process_sandbox: Sandbox) -> None:
    [row] = _one(tmp_path, Faulty(process_sandbox, 2, "raise"), [TWICE], retries=3, backoff_s=0.1)
    assert (row["status"], row["passed"]) == ("accepted", True)
    assert row["attempts"] >= 2


def test_killed_runs_are_confirmed_not_graded(tmp_path: Path, process_sandbox: Sandbox) -> None:
    [row] = _one(tmp_path, Faulty(process_sandbox, 1, "kill"), [TWICE], backoff_s=0.1)
    assert (row["status"], row["passed"]) == ("accepted", True), row["reason"]
    assert row["attempts"] == 2


def test_an_engine_that_stays_down_is_an_infrastructure_error(
    tmp_path: Path, process_sandbox: Sandbox
) -> None:
    rows = _one(
        tmp_path, Faulty(process_sandbox, 10**6, "raise"), [TWICE, TWICE], retries=1, backoff_s=0.05
    )
    assert [(r["status"], r["passed"]) for r in rows] == [("infrastructure_error", False)] * 2
    assert all("engine not answering" in str(r["reason"]) for r in rows)
    assert all(r["attempts"] == 2 for r in rows)


def test_code_that_kills_itself_is_still_wrong_code(
    tmp_path: Path, process_sandbox: Sandbox
) -> None:
    tasks = write_jsonl(tmp_path / "t.jsonl", [TWICE])
    samples = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {
                "task_id": "twice",
                "solution": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
            }
        ],
    )
    out = tmp_path / "v.jsonl"
    verify_dataset(
        tasks,
        solutions=samples,
        output=out,
        sandbox=process_sandbox,
        jobs=1,
        config=LIGHT,
        backoff_s=0.05,
    )
    [row] = read_jsonl(out)
    assert (row["status"], row["passed"]) == ("failed", False)
    assert row["attempts"] == 2  # confirmed once, then graded


def test_fix_suggestions_propose_verified_tests(tmp_path: Path, process_sandbox: Sandbox) -> None:
    only_tests = VerifierConfig(n_standard=0, n_extended=150)
    tasks = write_jsonl(tmp_path / "t.jsonl", [WEAK])
    out = tmp_path / "v.jsonl"
    verify_dataset(
        tasks, output=out, sandbox=process_sandbox, jobs=1, config=only_tests, fix_suggestions=True
    )
    [row] = read_jsonl(out)
    assert row["status"] == "rejected"
    fix = row["fix"]
    assert any("mutants" in a for a in fix["advice"])
    assert "def test_suggested_0():" in fix["suggested_tests"]
    assert "assert clamp_sum(" in fix["suggested_tests"]
    assert fix["mutation_score_with_suggested_tests"] > row["mutation_score"]
    plain = tmp_path / "plain.jsonl"
    verify_dataset(tasks, output=plain, sandbox=process_sandbox, jobs=1, config=only_tests)
    assert "fix" not in read_jsonl(plain)[0]  # off by default
