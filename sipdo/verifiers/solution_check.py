"""``verify_solution`` as an I/O-free flow: candidate run, comparison on the host, test replay.

Order of work: the reference side (cached by the caller) gives the cases; one
candidate run answers every case (tests' own arguments first in size order,
then the generated ones); the host compares answers with the reference's
records; the tests are replayed against the candidate's answers only when
those differ from the reference's (identical answers make the tests behave
exactly as they did on the reference, which passed them).
"""

from __future__ import annotations

from typing import Any

from sipdo import pycode
from sipdo.errors import VerificationError
from sipdo.verifiers.candidate import (
    CallRun,
    candidate_request,
    describe,
    read_calls,
    read_replay,
    replay_request,
)
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.domain import Envelope, declined_cases
from sipdo.verifiers.harness import codec
from sipdo.verifiers.reference import Case, ReferenceRun, agrees
from sipdo.verifiers.runs import Flow, parse, require_done
from sipdo.verifiers.shrink import shrink_flow
from sipdo.verifiers.types import Check, CodeTask, Verdict

_NO_ANSWER: dict[str, Any] = {"r": {"timeout": True}, "post": []}


def run_candidate(
    source: str, task: CodeTask, cases: list[Case], config: VerifierConfig
) -> Flow[CallRun]:
    """One untrusted run answering ``cases``."""
    req = candidate_request(source, task.entry_point, cases, config)
    [res] = yield [req]
    return read_calls(req, parse(req, res), cases)


def identical(answer: dict[str, Any] | None, expected: dict[str, Any]) -> bool:
    """Exactly the same encoded outcome and post-call arguments (no tolerance)."""
    return answer is not None and codec.key([answer["r"], answer["post"]]) == codec.key(
        [expected["r"], expected["post"]]
    )


def tests_flow(
    task: CodeTask,
    source: str,
    answers: dict[str, dict[str, Any]],
    asked: set[str],
    config: VerifierConfig,
) -> Flow[dict[str, tuple[str, str]]]:
    """Replay the tests on ``answers``; run the candidate on inputs the tests newly ask for."""
    table = {k: answers.get(k, _NO_ANSWER) for k in asked}
    outcomes: dict[str, tuple[str, str]] = {}
    for _ in range(max(1, config.replay_rounds)):
        req = replay_request(task, [table], config)
        [res] = yield [req]
        out = parse(req, res)
        require_done(out, f"test replay of task {task.id}")
        rep = read_replay(out, 1)
        outcomes = rep.outcomes[0] | {t: ("failed", m) for t, m in rep.collect_errors.items()}
        fresh = [Case("miss", inp, {}) for inp in rep.misses[0] if codec.key(inp) not in asked]
        if not fresh:
            break
        more = yield from run_candidate(source, task, fresh, config)
        for case in fresh:
            asked.add(case.key)
            table[case.key] = (
                more.results[0].get(case.key, _NO_ANSWER) if not more.tampered else _NO_ANSWER
            )
    return outcomes


def solution_flow(
    task: CodeTask, candidate: str, ref: ReferenceRun, config: VerifierConfig
) -> Flow[Verdict]:
    """Verify ``candidate`` against ``task`` given the reference side ``ref``."""
    if not ref.complete:
        raise VerificationError(
            f"task {task.id}: the reference run did not finish: {ref.ending}\n{ref.stderr}"
        )
    if ref.failing_tests or ref.exit_code not in (0, 5):
        first = next(iter(ref.failing_tests.items()), ("?", f"pytest exit code {ref.exit_code}"))
        raise VerificationError(
            f"task {task.id}: the reference fails its own tests ({first[0]}: {first[1]})"
        )
    unparsable = syntax_verdict(candidate)
    if unparsable is not None:
        return unparsable
    cases = sorted(ref.group("test", "std"), key=lambda c: c.size)
    run = yield from run_candidate(candidate, task, cases, config)
    answers = {} if run.tampered else run.results[0]
    test_cases = ref.group("test")
    env = Envelope.for_run(ref, config)
    declined = declined_cases(cases, answers, env)
    skip = {c.key for c in declined}
    wrong = [
        c for c in cases if c.key not in skip and not agrees(answers.get(c.key), c, ref.policy)
    ]
    import_error = run.import_errors[0]
    if import_error:
        outcomes = {
            t: ("failed", f"solution.py failed to import: {import_error}") for t in ref.tests
        }
    elif all(identical(answers.get(c.key), c.expected) for c in test_cases):
        outcomes = dict(ref.tests)
    else:
        asked = {c.key for c in cases}
        outcomes = yield from tests_flow(task, candidate, answers, asked, config)
    shrunk = None
    if wrong and config.shrink_rounds and _answered(answers.get(wrong[0].key)):
        case, got = yield from shrink_flow(
            task,
            candidate,
            wrong[0],
            answers[wrong[0].key],
            config,
            config.shrink_rounds,
            ref=ref,
            envelope=env,
        )
        if case is not wrong[0]:
            shrunk = (case, got)
    return build_verdict(task, cases, wrong, answers, outcomes, run, shrunk, declined)


def syntax_verdict(candidate: str) -> Verdict | None:
    """The failing verdict of a candidate that does not parse, or None if it parses."""
    try:
        pycode.parse(candidate)
    except SyntaxError as exc:
        text = f"solution.py does not parse: {exc.msg} (line {exc.lineno})"
        return Verdict(
            passed=False,
            score=0.0,
            feedback=text,
            checks=[Check(name="syntax", passed=False, detail=text)],
        )
    return None


def _answered(answer: dict[str, Any] | None) -> bool:
    return answer is not None and ("ok" in answer["r"] or "raise" in answer["r"])


def build_verdict(
    task: CodeTask,
    cases: list[Case],
    wrong: list[Case],
    answers: dict[str, dict[str, Any]],
    outcomes: dict[str, tuple[str, str]],
    run: CallRun,
    shrunk: tuple[Case, dict[str, Any] | None] | None = None,
    declined: list[Case] | None = None,
) -> Verdict:
    """Checks, score and actionable feedback from the comparison and the test outcomes
    (``declined``: generated inputs not compared, ``sipdo.verifiers.domain``)."""
    failed = {t: msg for t, (o, msg) in outcomes.items() if o == "failed"}
    n_tests = max(1, len(outcomes))
    tests_score = 1.0 - len(failed) / n_tests if outcomes else 1.0
    diff_score = 1.0 - len(wrong) / len(cases) if cases else 1.0
    checks = [
        Check(name=f"test:{t}", passed=o != "failed", score=float(o != "failed"), detail=m)
        for t, (o, m) in outcomes.items()
    ]
    checks.append(
        Check(
            name="tests",
            passed=not failed,
            score=tests_score,
            detail=f"{len(failed)} of {len(outcomes)} failed",
        )
    )
    lines: list[str] = []
    if run.import_errors[0]:
        lines.append(
            f"solution.py failed to import or lacks {task.entry_point}: {run.import_errors[0]}"
        )
    if run.tampered:
        lines.append(
            "the run answered some inputs twice (channel tampered with): all answers rejected"
        )
    if failed:
        shown = "; ".join(f"{t.split('::')[-1]}: {m}" for t, m in list(failed.items())[:2])
        lines.append(f"{len(failed)} of {len(outcomes)} tests failed: {shown}")
    counterexample = None
    if wrong:
        first = wrong[0]  # cases are in size order: this is the smallest failing input
        got = answers.get(first.key)
        label = "smallest"
        if shrunk is not None:
            (first, got), label = shrunk, "smallest (shrunk)"
        counterexample = first.call_text(task.entry_point)
        lines.append(
            f"wrong on {len(wrong)} of {len(cases)} inputs; {label}: {counterexample} "
            f"expected {describe(first.expected)}, got {describe(got)}{_mutation_note(first, got)}"
        )
        if not answers and not run.import_errors[0]:
            lines.append(f"the candidate's run {run.ending}")
    checks.append(
        Check(
            name="differential",
            passed=not wrong,
            score=diff_score,
            detail=f"{len(wrong)} of {len(cases)} inputs differ from the reference",
            data={"inputs": len(cases), "mismatches": len(wrong), "counterexample": counterexample},
        )
    )
    if declined:
        first = declined[0]
        checks.append(
            Check(
                name="declared domain",
                passed=True,
                detail=(
                    f"{len(declined)} generated input(s) beyond the tests' range rejected by "
                    f"the candidate's own raise/assert, not compared; e.g. "
                    f"{first.call_text(task.entry_point)} raised "
                    f"{answers[first.key]['r']['raise']}"
                ),
                data={"inputs": len(declined)},
            )
        )
    passed = not failed and not wrong and not run.tampered and not run.import_errors[0]
    score = (tests_score + diff_score) / 2 if not run.tampered else 0.0
    feedback = (
        "passed all tests and matched the reference on every generated input"
        if passed
        else "\n".join(lines)
    )
    return Verdict(
        passed=passed,
        score=score if not passed else 1.0,
        feedback=feedback,
        checks=checks,
        counterexample=counterexample,
    )


def _mutation_note(case: Case, got: dict[str, Any] | None) -> str:
    if got is None or not codec.same(got["r"].get("ok"), case.expected["r"].get("ok")):
        return ""
    if not codec.same(got["post"], case.expected["post"]):
        want, have = codec.render(case.expected["post"], 150), codec.render(got["post"], 150)
        return f" (arguments after the call: expected {want}, got {have})"
    return ""
