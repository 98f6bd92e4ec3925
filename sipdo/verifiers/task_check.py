"""``verify_task`` as an I/O-free flow: is a generated task sound, are its tests strong?

Gates, each a ``Check``: the reference passes its own tests (``reference``);
two independent reference runs agree on every outcome and output
(``deterministic``); nothing the tests call times out (``timeouts``); AST
mutants of the reference are killed by the tests plus the differential inputs
(``mutation``: killed / distinguishable >= threshold, where a mutant that no
input in the wider ``ext`` set tells apart from the reference counts as
equivalent and is left out); and, given a checker solution, it agrees with
the reference on the tests and on every generated input (``consensus``).
Mutants are the task's own code, yet they still run sandboxed, in a few
batched runs with per-call timers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sipdo import pycode
from sipdo.errors import VerificationError
from sipdo.verifiers.candidate import (
    call_request,
    describe,
    read_calls,
    read_replay,
    replay_request,
)
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.contract import ArgumentPolicy
from sipdo.verifiers.domain import Envelope, declined_cases
from sipdo.verifiers.mutation import Mutant, mutants
from sipdo.verifiers.reference import Case, ReferenceRun, agrees, reference_flow
from sipdo.verifiers.runs import Flow, parse, require_done
from sipdo.verifiers.signature import signature
from sipdo.verifiers.solution_check import identical, run_candidate, tests_flow
from sipdo.verifiers.types import Check, CodeTask, Verdict

_CHUNK = 10


@dataclass(frozen=True)
class MutantFate:
    """How one mutant fared: who told it apart from the reference."""

    mutant: Mutant
    by_tests: bool
    by_differential: bool
    distinguishable: bool
    witness: str = ""

    @property
    def killed(self) -> bool:
        return self.by_tests or self.by_differential


def _first_diff(
    cases: list[Case], answers: dict[str, dict[str, Any]], policy: ArgumentPolicy
) -> Case | None:
    for c in cases:
        got = answers.get(c.key)
        if got is not None and not agrees(got, c, policy):
            return c
    return None


def mutation_flow(
    task: CodeTask, ref: ReferenceRun, config: VerifierConfig
) -> Flow[list[MutantFate]]:
    """Evaluate every mutant on all cases (batched), then replay the tests where needed."""
    found = mutants(task.reference_solution, config.max_mutants)
    tests, std, ext = ref.group("test"), ref.group("std"), ref.group("ext")
    cases = tests + sorted(std, key=lambda c: c.size) + sorted(ext, key=lambda c: c.size)
    chunks = [found[i : i + _CHUNK] for i in range(0, len(found), _CHUNK)]
    reqs = [
        call_request(
            {f"_sipdo_mut_{i + k}.py": m.source for k, m in enumerate(chunk)},
            task.entry_point,
            cases,
            config,
            floor=config.mutant_call_floor_s,
            expected=True,
            stop_from=len(tests),
            policy=ref.policy,
        )
        for i, chunk in zip(range(0, len(found), _CHUNK), chunks, strict=True)
    ]
    results = yield reqs
    answers: list[dict[str, dict[str, Any]]] = []
    broken: list[bool] = []
    for req, res in zip(reqs, results, strict=True):
        out = parse(req, res)
        run = read_calls(req, out, cases)
        ended = {r["m"] for r in out.records if r.get("end")}
        for j in range(len(req.request["modules"])):
            answers.append(run.results[j])
            broken.append(run.import_errors[j] is not None or j not in ended)
    # Tests change behaviour only for mutants whose answers to the tests' own calls differ.
    replay = [
        k
        for k, a in enumerate(answers)
        if not broken[k] and not all(identical(a.get(c.key), c.expected) for c in tests)
    ]
    by_tests = {k: True for k, b in enumerate(broken) if b}
    if replay and ref.tests:
        tables = [
            {c.key: answers[k].get(c.key, {"r": {"timeout": True}, "post": []}) for c in tests}
            for k in replay
        ]
        req = replay_request(task, tables, config)
        [res] = yield [req]
        out = parse(req, res)
        require_done(out, f"mutant test replay of task {task.id}")
        rep = read_replay(out, len(tables))
        for k, outcome in zip(replay, rep.outcomes, strict=True):
            by_tests[k] = any(o == "failed" for o, _ in outcome.values())
    fates = []
    for k, m in enumerate(found):
        d_test, d_std, d_ext = (_first_diff(g, answers[k], ref.policy) for g in (tests, std, ext))
        witness = next((c.call_text(task.entry_point) for c in (d_test, d_std, d_ext) if c), "")
        killed_t = by_tests.get(k, False)
        fates.append(
            MutantFate(
                m,
                killed_t,
                bool(d_test or d_std),
                bool(killed_t or d_test or d_std or d_ext),
                witness,
            )
        )
    return fates


def _reject(text: str, name: str) -> Verdict:
    return Verdict(
        passed=False, score=0.0, feedback=text, checks=[Check(name=name, passed=False, detail=text)]
    )


def task_flow(task: CodeTask, checker: str | None, config: VerifierConfig) -> Flow[Verdict]:
    """Verify ``task``; every reason for rejection lands in the verdict."""
    try:
        signature(task.reference_solution, task.entry_point)
        pycode.parse(task.tests)
    except VerificationError as exc:
        return _reject(f"task rejected: {exc}", "reference")
    except SyntaxError as exc:
        return _reject(
            f"task rejected: the tests do not parse: {exc.msg} (line {exc.lineno})", "tests"
        )
    r1, r2 = yield from reference_flow(task, config, copies=2)
    if not r1.complete:
        return _reject(
            f"task rejected: the reference run {r1.ending}\n{r1.stderr[-600:]}", "reference"
        )
    checks: list[Check] = []
    failing = r1.failing_tests
    ok_ref = not failing and r1.exit_code == 0 and any(o == "passed" for o, _ in r1.tests.values())
    detail = "; ".join(f"{t}: {m}" for t, m in list(failing.items())[:3]) or (
        "no test passed (none collected?)" if not ok_ref else f"{len(r1.tests)} tests pass"
    )
    checks.append(Check(name="reference", passed=ok_ref, score=float(ok_ref), detail=detail))
    if r1.unencodable_calls:
        text = f"the tests pass {r1.unencodable_calls} argument(s) that cannot be serialized"
        checks.append(Check(name="serializable", passed=False, detail=text))
    same_runs = r2.complete and r1.fingerprint() == r2.fingerprint()
    checks.append(
        Check(
            name="deterministic",
            passed=same_runs,
            score=float(same_runs),
            detail="two runs agree" if same_runs else "two reference runs disagree on outcomes",
        )
    )
    slow = [c for c in r1.group("test") if "timeout" in c.expected["r"]]
    checks.append(
        Check(
            name="timeouts",
            passed=not slow,
            score=float(not slow),
            data={"dropped": r1.dropped},
            detail=f"the reference timed out on {slow[0].call_text(task.entry_point)}"
            if slow
            else "none",
        )
    )
    contract = _contract_check(task, r1)
    if contract is not None:
        checks.append(contract)
    if ok_ref and same_runs and not slow:
        fates = yield from mutation_flow(task, r1, config)
        checks.append(_mutation_check(fates, config))
    if checker is not None:
        checks.append((yield from consensus_flow(task, checker, r1, config)))
    passed = all(c.passed for c in checks)
    score = sum(c.score for c in checks) / len(checks)
    bad = [f"{c.name}: {c.detail}" for c in checks if not c.passed]
    feedback = (
        "task accepted: " + "; ".join(f"{c.name} ok" for c in checks)
        if passed
        else "task rejected: " + "\n".join(bad)
    )
    return Verdict(passed=passed, score=score, feedback=feedback, checks=checks)


_NOT_RAISES = frozenset({"timeout", "outside contract", "RecursionError", "MemoryError"})


def _contract_check(task: CodeTask, ref: ReferenceRun) -> Check | None:
    """A written precondition must admit every test input, and inside it the reference
    may raise only exception types its tests also see (the documented errors)."""
    info = ref.contract
    if info.get("kind") != "written":
        return None
    if info.get("error"):
        return Check(name="contract", passed=False, detail=f"precondition: {info['error']}")
    outside = info.get("outside_tests") or []
    if outside:
        first = Case("test", outside[0]["in"], {}).call_text(task.entry_point)
        why = f" ({outside[0]['why']})" if outside[0].get("why") else ""
        return Check(
            name="contract",
            passed=False,
            detail=f"the precondition rejects {len(outside)} test input(s), e.g. {first}{why}",
        )
    expected = {c.expected["r"].get("raise") for c in ref.group("test")}
    raised = {k: n for k, n in ref.dropped.items() if k not in _NOT_RAISES and k not in expected}
    if raised:
        named = ", ".join(f"{k} on {n}" for k, n in sorted(raised.items()))
        return Check(
            name="contract",
            passed=False,
            detail=f"the reference raises inside its precondition: {named} generated input(s); "
            "narrow the precondition or handle those inputs",
        )
    return Check(name="contract", passed=True, score=1.0, detail="precondition holds")


def _mutation_check(fates: list[MutantFate], config: VerifierConfig) -> Check:
    live = [f for f in fates if f.distinguishable]
    killed = [f for f in live if f.killed]
    score = len(killed) / len(live) if live else 1.0
    survivors = [f for f in live if not f.killed]
    equivalent = len(fates) - len(live)
    detail = (
        f"{len(killed)} of {len(live)} distinguishable mutants killed ({equivalent} equivalent)"
    )
    if survivors:
        named = "; ".join(
            f"{f.mutant.description} (only {f.witness} tells it apart)" for f in survivors[:3]
        )
        detail += f"; surviving: {named}"
    data = {
        "mutants": [
            {
                "description": f.mutant.description,
                "by_tests": f.by_tests,
                "by_differential": f.by_differential,
                "distinguishable": f.distinguishable,
                "witness": f.witness,
            }
            for f in fates
        ],
        "threshold": config.mutation_threshold,
    }  # fmt: skip
    return Check(
        name="mutation",
        passed=score >= config.mutation_threshold,
        score=score,
        detail=detail,
        data=data,
    )


def consensus_flow(
    task: CodeTask, checker: str, ref: ReferenceRun, config: VerifierConfig
) -> Flow[Check]:
    """The checker must agree with the reference on the tests and on all generated inputs."""
    cases = sorted(ref.group("test", "std", "ext"), key=lambda c: c.size)
    run = yield from run_candidate(checker, task, cases, config)
    answers = {} if run.tampered else run.results[0]
    declined = declined_cases(cases, answers, Envelope.for_run(ref, config))
    skip = {c.key for c in declined}
    wrong = [
        c for c in cases if c.key not in skip and not agrees(answers.get(c.key), c, ref.policy)
    ]
    failed: dict[str, str] = {}
    if not run.import_errors[0] and not all(
        identical(answers.get(c.key), c.expected) for c in ref.group("test")
    ):
        outcomes = yield from tests_flow(task, checker, answers, {c.key for c in cases}, config)
        failed = {t: m for t, (o, m) in outcomes.items() if o == "failed"}
    agree = 1.0 - len(wrong) / len(cases) if cases else 1.0
    detail = (
        f"checker agrees with the reference on {len(cases) - len(wrong)} of {len(cases)} inputs"
    )
    if run.import_errors[0]:
        detail += f"; checker failed to import: {run.import_errors[0]}"
    if wrong:
        w = wrong[0]
        detail += (
            f"; they differ on {w.call_text(task.entry_point)}: reference {describe(w.expected)}, "
            f"checker {describe(answers.get(w.key))}"
        )
    if failed:
        detail += f"; checker fails {len(failed)} tests"
    if declined:
        detail += (
            f"; {len(declined)} input(s) beyond the tests' range declined by the checker's "
            "own raise/assert, not compared"
        )
    passed = not wrong and not failed and not run.import_errors[0]
    data = {"distinguishing_input": wrong[0].call_text(task.entry_point) if wrong else None}
    return Check(
        name="consensus",
        passed=passed,
        score=agree if not failed else 0.0,
        detail=detail,
        data=data,
    )
