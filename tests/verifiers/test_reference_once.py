"""Rows grading samples of one task at the same time make its reference side once.

A pass@k file lists a task's samples one after another, and ``verify_dataset``
holds ``2 x jobs`` rows in flight: without waiting for each other, each row of a
task would make the reference side before the first had cached it. Should the
row making it fail or be cancelled, one of the others makes it, and no row is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sipdo.errors import SandboxError
from sipdo.sandbox import Limits
from sipdo.sandbox.base import ExecResult
from sipdo.sandbox.process import ProcessSandbox
from sipdo.verifiers import VerifierConfig, averify_solution, verify_dataset, verify_solution
from sipdo.verifiers.types import CodeTask
from tests.verifiers.datasetkit import SOUND, read_jsonl, write_jsonl
from tests.verifiers.recording import Recording

CONFIG = VerifierConfig(n_standard=20, n_extended=0)
RIGHT = SOUND["reference_solution"]
WRONG = "def clamp_sum(xs, lo, hi):\n    return sum(xs)\n"
REFERENCE = "_sipdo_reference.py"


class SlowReference(Recording):
    """Holds each reference run back ``delay`` seconds (the other rows arrive meanwhile);
    the first ``fail`` of them raise a sandbox error instead of running. Both ``arun``
    (``averify_solution`` on this sandbox) and ``run`` (``verify_dataset``, whose
    watching wrapper calls ``run`` in a worker thread)."""

    def __init__(self, inner: ProcessSandbox, *, delay: float = 0.5, fail: int = 0) -> None:
        super().__init__(inner)
        self.delay, self.fail = delay, fail

    def _failing(self, command: Sequence[str]) -> bool:
        if command[-1] != REFERENCE or not self.fail:
            return False
        self.fail -= 1
        self.requests.append((REFERENCE, {}))
        return True

    def run(
        self,
        files: Mapping[str, str | bytes],
        command: Sequence[str],
        *,
        stdin: str | bytes | None = None,
        limits: Limits | None = None,
    ) -> ExecResult:
        if command[-1] == REFERENCE:
            time.sleep(self.delay)
            if self._failing(command):
                raise SandboxError("the engine went away (scripted)")
        return super().run(files, command, stdin=stdin, limits=limits)

    async def arun(
        self,
        files: Mapping[str, str | bytes],
        command: Sequence[str],
        *,
        stdin: str | bytes | None = None,
        limits: Limits | None = None,
    ) -> ExecResult:
        if command[-1] == REFERENCE:
            await asyncio.sleep(self.delay)
            if self._failing(command):
                raise SandboxError("the engine went away (scripted)")
        return await super().arun(files, command, stdin=stdin, limits=limits)


def _task() -> CodeTask:
    fields = ("prompt", "entry_point", "reference_solution", "tests")
    return CodeTask.model_validate({"id": SOUND["task_id"], **{k: SOUND[k] for k in fields}})


async def _grade_all(
    sandbox: Recording, samples: Sequence[str], *, cancel_first: bool = False
) -> list[object]:
    """Grade ``samples`` at once; the first row starts 0.1 s ahead, so it makes the side."""
    task = _task()
    rows = []
    for sample in samples:
        row = averify_solution(task, sample, sandbox=sandbox, config=CONFIG)
        rows.append(asyncio.create_task(row))
        if len(rows) == 1:
            await asyncio.sleep(0.1)
    await asyncio.sleep(0.1)  # every row now waits on the first's reference run (0.5 s)
    if cancel_first:
        rows[0].cancel()
    return await asyncio.gather(*rows, return_exceptions=True)


def test_rows_in_flight_together_make_the_side_once(process_sandbox: ProcessSandbox) -> None:
    sandbox = SlowReference(process_sandbox)
    verdicts = asyncio.run(_grade_all(sandbox, [RIGHT, WRONG, RIGHT, WRONG]))
    assert sandbox.reference_runs == 1
    assert [v.passed for v in verdicts] == [True, False, True, False]  # type: ignore[attr-defined]
    # the same verdicts as grading each row alone, on a fresh cache
    alone = [
        verify_solution(_task(), s, sandbox=Recording(process_sandbox), config=CONFIG)
        for s in (RIGHT, WRONG)
    ]
    assert [v.feedback for v in verdicts[2:]] == [v.feedback for v in alone]  # type: ignore[attr-defined]


def test_when_the_maker_fails_the_others_make_their_own(process_sandbox: ProcessSandbox) -> None:
    sandbox = SlowReference(process_sandbox, fail=1)
    first, *others = asyncio.run(_grade_all(sandbox, [RIGHT, WRONG, RIGHT]))
    assert isinstance(first, SandboxError)  # the row that made it reports the failure
    assert [v.passed for v in others] == [False, True]  # type: ignore[attr-defined]
    assert sandbox.reference_runs == 2  # the failed attempt, then one waiter's for all


def test_a_cancelled_maker_leaves_the_others_to_finish(process_sandbox: ProcessSandbox) -> None:
    sandbox = SlowReference(process_sandbox)
    first, *others = asyncio.run(_grade_all(sandbox, [RIGHT, WRONG, RIGHT], cancel_first=True))
    assert isinstance(first, asyncio.CancelledError)
    assert [v.passed for v in others] == [False, True]  # type: ignore[attr-defined]
    assert sandbox.reference_runs == 1  # cancelled before its run began; one waiter makes it


def test_a_passk_file_makes_each_side_once(tmp_path: Path, process_sandbox: ProcessSandbox) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [SOUND])
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [{"task_id": "sound", "solution": s} for s in (RIGHT, WRONG) * 3],
    )
    counting = Recording(process_sandbox)
    summary = verify_dataset(
        tasks, solutions=samples, output=tmp_path / "v.jsonl", sandbox=counting, jobs=2
    )
    assert counting.reference_runs == 1
    assert [r["passed"] for r in read_jsonl(tmp_path / "v.jsonl")] == [True, False] * 3
    assert summary.rows == 6


def test_a_dataset_row_whose_maker_failed_is_retried_and_no_row_is_lost(
    tmp_path: Path, process_sandbox: ProcessSandbox
) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [SOUND])
    samples = write_jsonl(
        tmp_path / "samples.jsonl", [{"task_id": "sound", "solution": s} for s in (RIGHT,) * 3]
    )
    sandbox = SlowReference(process_sandbox, fail=1)
    verify_dataset(tasks, solutions=samples, output=tmp_path / "v.jsonl", sandbox=sandbox, jobs=2)
    rows = read_jsonl(tmp_path / "v.jsonl")
    assert [r["passed"] for r in rows] == [True] * 3, [r.get("reason") for r in rows]
    assert sandbox.reference_runs == 2  # the failed attempt, then the side made again


def _grade_in_threads(sandbox: Recording, samples: Sequence[str]) -> list[object]:
    """Grade ``samples`` from threads (a reward function's batch); the first starts 0.1 s
    ahead, so it makes the side."""
    task = _task()

    def grade(sample: str) -> object:
        try:
            return verify_solution(task, sample, sandbox=sandbox, config=CONFIG)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(samples)) as pool:
        first = pool.submit(grade, samples[0])
        time.sleep(0.1)
        rest = [pool.submit(grade, s) for s in samples[1:]]
        return [f.result() for f in (first, *rest)]


def test_threads_grading_one_task_make_the_side_once(process_sandbox: ProcessSandbox) -> None:
    sandbox = SlowReference(process_sandbox)
    verdicts = _grade_in_threads(sandbox, [RIGHT, WRONG, RIGHT, WRONG])
    assert sandbox.reference_runs == 1
    assert [v.passed for v in verdicts] == [True, False, True, False]  # type: ignore[attr-defined]


def test_when_a_threads_maker_fails_one_waiter_makes_it(process_sandbox: ProcessSandbox) -> None:
    sandbox = SlowReference(process_sandbox, fail=1)
    first, *others = _grade_in_threads(sandbox, [RIGHT, WRONG, RIGHT])
    assert isinstance(first, SandboxError)
    assert [v.passed for v in others] == [False, True]  # type: ignore[attr-defined]
    assert sandbox.reference_runs == 2


@pytest.mark.timeout(90)  # waiting would block the loop its maker needs: 180 s, then its own
def test_a_caller_inside_an_event_loop_never_waits(process_sandbox: ProcessSandbox) -> None:
    # the blocking call made on a loop's thread (bad practice, but it must not hang) while
    # a coroutine of that loop makes the side: it makes its own instead of waiting
    sandbox = SlowReference(process_sandbox)

    async def scenario() -> tuple[object, object]:
        task = _task()
        maker = asyncio.create_task(averify_solution(task, RIGHT, sandbox=sandbox, config=CONFIG))
        await asyncio.sleep(0.1)
        blocking = verify_solution(task, WRONG, sandbox=sandbox, config=CONFIG)
        return await maker, blocking

    made, blocking = asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    assert made.passed  # type: ignore[attr-defined]
    assert not blocking.passed  # type: ignore[attr-defined]
    assert sandbox.reference_runs == 2
