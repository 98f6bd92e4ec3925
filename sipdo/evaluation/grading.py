"""Grading one answer two ways: the task's own tests ("base") and sipdo's full verification.

``base`` runs the task's tests against the answer and nothing else: for a
HumanEval task that is HumanEval's ``check(candidate)``, so base pass@1 is
comparable to published numbers (the answer shares the process with the
tests, as in HumanEval's own harness). ``full`` is ``verify_solution``: the
tests replayed in the hardened harness plus differential testing against the
reference on generated inputs. Where the two disagree the answer passed the
tests but differs from the reference somewhere (or, rarely, the other way
round); those are listed per task by ``sipdo eval``.

``base_flow`` is an I/O-free flow (see ``sipdo.verifiers.runs``); ``agrade``
drives it and ``averify_solution`` on one sandbox, concurrently.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sipdo.errors import SandboxInputError, VerificationError
from sipdo.pycode import find_entry_point
from sipdo.sandbox.base import Sandbox
from sipdo.verifiers import averify_solution
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.grading import Answer, Grader, LazySandbox, agrade_answer
from sipdo.verifiers.harness import files
from sipdo.verifiers.runs import Flow, RunRequest, adrive, drive, parse
from sipdo.verifiers.types import CodeTask

BASE_SCRIPT = "_sipdo_base.py"
# HumanEval's own harness gives a problem 3 s; a sandbox start and pytest's import come on top.
BASE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class BaseResult:
    """The task's own tests on the answer: passed, and why not."""

    passed: bool
    detail: str


@dataclass(frozen=True)
class Grade:
    """Both gradings of one answer.

    ``status``: ``graded``; ``no_code`` (the reply holds no definition of the
    entry point: both gradings fail, nothing is run); ``task_error`` (the task
    itself cannot be graded, e.g. its reference fails its own tests: the
    sample is left out of pass@k and listed).
    """

    status: str
    base_passed: bool
    full_passed: bool
    feedback: str
    base_detail: str
    seconds: float


@cache
def _driver_source() -> str:
    return (Path(__file__).parent / "base_driver.py").read_text(encoding="utf-8")


def base_request(task: CodeTask, answer: str, timeout_s: float = BASE_TIMEOUT_S) -> RunRequest:
    """The run request of the base grading: ``solution.py``, the tests, the driver."""
    tests_file = "test_task.py"
    run_files = files("codec") | {
        BASE_SCRIPT: _driver_source(),
        "solution.py": answer,
        tests_file: task.tests,
    }
    return RunRequest(run_files, BASE_SCRIPT, {"tests_file": tests_file}, timeout_s)


def base_flow(task: CodeTask, answer: str, timeout_s: float = BASE_TIMEOUT_S) -> Flow[BaseResult]:
    """Run the task's tests on ``answer``; passed only if the run finished with every
    test passing (at least one test ran)."""
    req = base_request(task, answer, timeout_s)
    [res] = yield [req]
    out = parse(req, res)
    if not out.done:
        return BaseResult(False, f"the test run did not finish: {out.ending()}")
    failed = [r for r in out.records if r.get("o") == "failed"]
    passed = [r for r in out.records if r.get("o") == "passed"]
    exit_code = next((r["exit"] for r in out.records if "exit" in r), -1)
    if failed:
        first = failed[0]
        name = str(first.get("test", "")).split("::")[-1]
        return BaseResult(False, f"{len(failed)} test(s) failed; {name}: {first.get('msg', '')}")
    if exit_code != 0 or not passed:
        return BaseResult(False, f"pytest exited with code {exit_code} ({len(passed)} passed)")
    return BaseResult(True, f"{len(passed)} test(s) passed")


def grade_base(task: CodeTask, answer: str, *, sandbox: Sandbox) -> BaseResult:
    """Blocking base grading (the task's own tests only)."""
    return drive(base_flow(task, answer), sandbox)


def defines(answer: str, entry_point: str) -> bool:
    """Whether ``answer`` defines ``entry_point`` at module level (a def, a class or an
    assignment; see ``sipdo.pycode.find_entry_point``)."""
    return bool(find_entry_point(answer, entry_point))


async def agrade(
    task: CodeTask,
    answer: str,
    *,
    sandbox: Sandbox,
    config: VerifierConfig | None = None,
) -> Grade:
    """Grade ``answer`` both ways at once. A failing answer is a ``Grade``, never an
    exception; sandbox and store failures propagate (the system failed)."""
    started = time.perf_counter()
    found = find_entry_point(answer, task.entry_point)
    if not answer.strip() or not found:
        text = f"the reply holds no Python code defining {task.entry_point}(): {found.reason}"
        return Grade("no_code", False, False, text, text, 0.0)
    base_run = adrive(base_flow(task, answer), sandbox)
    full_run = averify_solution(task, answer, sandbox=sandbox, config=config)
    base, full = await asyncio.gather(base_run, full_run, return_exceptions=True)
    seconds = time.perf_counter() - started
    if isinstance(full, VerificationError):
        text = f"task cannot be graded: {full}"
        return Grade("task_error", False, False, text, text, seconds)
    if isinstance(base, SandboxInputError) or isinstance(full, SandboxInputError):
        text = f"answer cannot be run: {full if isinstance(full, BaseException) else base}"
        return Grade("graded", False, False, text, text, seconds)
    if isinstance(base, BaseException):
        raise base
    if isinstance(full, BaseException):
        raise full
    return Grade("graded", base.passed, full.passed, full.feedback, base.detail, seconds)


async def agrade_by_domain(
    domain: Grader, task: dict[str, Any], answer: Answer, *, sandbox: Sandbox
) -> Grade:
    """Grade an answer to another domain's task (``qa``, ``plan``, ...) with that domain's
    own verifier, through the grading service the loop uses: one grading, so ``base``
    and ``full`` are the same verdict. A verdict marked ``task_error`` (the task cannot
    be graded) is status ``task_error``."""
    started = time.perf_counter()
    verdict = await agrade_answer(domain, task, answer, sandbox=LazySandbox(sandbox))
    passed = bool(verdict.get("passed"))
    feedback = str(verdict.get("feedback", ""))
    status = "task_error" if verdict.get("task_error") else "graded"
    return Grade(status, passed, passed, feedback, feedback, time.perf_counter() - started)
