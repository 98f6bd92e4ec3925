"""Tests-only grading in one sandbox run (``harness/live_driver.py``): the host side.

Grading a candidate on the task's tests alone (``VerifierConfig(n_standard=0,
n_extended=0)``) takes two runs otherwise: the reference run records the
tests' calls, the candidate run answers them. When the tests are a plain
module (``harness/plain.py``) and no reference side is known to reuse (none
in this process's cache, no ``ReferenceStore`` given: with one, the two runs
fill it and the next file's rows cost the candidate's run alone), one run
does both: the tests and the reference
stay in the driver's process, which no other process of the run can inspect,
and are never on disk; the candidate answers from a child process that holds
nothing but its own code. The verdict is built as ``solution_flow`` builds
it: the tests' outcomes on the candidate's answers, and the answers compared
with the reference's on the tests' own calls. Unlike the two runs, a wrong
answer is not shrunk to a smaller input (there are no generated inputs to
shrink towards in this mode).
"""

from __future__ import annotations

from typing import Any

from sipdo.errors import VerificationError
from sipdo.verifiers.candidate import CallRun
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.contract import argument_policy
from sipdo.verifiers.harness import bytecode, files, plain
from sipdo.verifiers.reference import Case, agrees
from sipdo.verifiers.runs import Flow, RunOutput, RunRequest, parse
from sipdo.verifiers.solution_check import build_verdict, syntax_verdict
from sipdo.verifiers.types import CodeTask, Verdict

_LIBRARIES = ("codec", "call_driver", "plain", "replay_driver")


def applies(task: CodeTask, config: VerifierConfig) -> bool:
    """Whether ``task`` is graded in one run under ``config``: tests-only, ``live_tests``
    on, and a tests module that runs without pytest."""
    return (
        config.live_tests
        and config.n_standard == 0
        and config.n_extended == 0
        and plain.is_plain(task.tests)
    )


def live_request(task: CodeTask, candidate: str, config: VerifierConfig) -> RunRequest:
    """The one run: the candidate on disk as ``solution.py``; the reference and the
    tests only in the request (stdin), which the candidate's process never sees."""
    request = {
        "entry": task.entry_point,
        "tests_file": config.tests_file,
        "reference": task.reference_solution,
        "tests": task.tests,
        "call_budget": config.reference_call_budget_s,
        "call_floor": config.call_floor_s,
        "time_factor": config.time_factor,
        "import_budget": config.run_floor_s,  # loading the candidate, as its own run's floor
    }
    run_files: dict[str, str | bytes] = {
        **files(*_LIBRARIES, "live_driver"),
        **bytecode(*_LIBRARIES),
        "solution.py": candidate,
    }
    timeout = config.reference_timeout_s + config.run_floor_s
    return RunRequest(run_files, "_sipdo_live.py", request, timeout)


def live_flow(task: CodeTask, candidate: str, config: VerifierConfig) -> Flow[Verdict | None]:
    """Grade ``candidate`` in one run; None if the run could not keep the candidate out
    of the tests' process (the caller then grades in two runs)."""
    unparsable = syntax_verdict(candidate)
    if unparsable is not None:
        return unparsable
    req = live_request(task, candidate, config)
    [res] = yield [req]
    out = parse(req, res)
    if any("unsafe" in r for r in out.records):
        return None
    return read_live(task, out)


def read_live(task: CodeTask, out: RunOutput) -> Verdict:
    """The verdict from the live run's records (see ``harness/live_driver.py``)."""
    ref_tests: dict[str, tuple[str, str]] = {}
    outcomes: dict[str, tuple[str, str]] = {}
    cases: list[Case] = []
    answers: dict[str, dict[str, Any]] = {}
    ref_exit: int | None = None
    import_error: str | None = None
    finished = False
    for rec in out.records:
        if "rtest" in rec:
            ref_tests.setdefault(str(rec["rtest"]), (str(rec.get("o")), str(rec.get("msg", ""))))
        elif "rexit" in rec:
            ref_exit = int(rec["rexit"])
        elif "g" in rec and isinstance(rec.get("r"), dict):
            expected = {"r": rec["r"], "post": rec.get("post", []), "dt": rec.get("dt", 0.0)}
            cases.append(Case("test", rec["in"], expected))
        elif "a" in rec and isinstance(rec.get("r"), dict):
            answers[str(rec["a"])] = {"r": rec["r"], "post": rec.get("post", [])}
        elif "import" in rec:
            import_error = str(rec["import"])
        elif "test" in rec:
            if outcomes.get(str(rec["test"]), ("", ""))[0] != "failed":
                outcomes[str(rec["test"])] = (str(rec.get("o")), str(rec.get("msg", "")))
        elif "exit" in rec:
            finished = True
    if ref_exit is None:
        raise VerificationError(
            f"task {task.id}: the tests on the reference did not finish: {out.ending()}\n"
            f"{out.result.stderr[-2000:]}"
        )
    failing = [(t, msg) for t, (o, msg) in ref_tests.items() if o == "failed"]
    if failing or ref_exit not in (0, 5):
        first = failing[0] if failing else ("?", f"pytest exit code {ref_exit}")
        raise VerificationError(
            f"task {task.id}: the reference fails its own tests ({first[0]}: {first[1]})"
        )
    if import_error is not None:
        outcomes = {
            t: ("failed", f"solution.py failed to import: {import_error}") for t in ref_tests
        }
    elif not finished:  # the candidate's process stopped the tests (killed or stopped them)
        ending = f"the run ended before the tests did: {out.ending()}"
        outcomes = {
            t: outcomes[t] if outcomes.get(t, ("",))[0] == "failed" else ("failed", ending)
            for t in ref_tests
        }
    policy = argument_policy(task, [(c.inp, c.expected) for c in cases])
    cases.sort(key=lambda c: c.size)
    wrong = [c for c in cases if not agrees(answers.get(c.key), c, policy)]
    run = CallRun([answers], [import_error], False, out.ending())
    return build_verdict(task, cases, wrong, answers, outcomes, run)
