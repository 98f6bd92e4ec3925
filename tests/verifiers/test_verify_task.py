"""verify_task on the process backend: soundness gates, mutation adequacy, consensus."""

from __future__ import annotations

from sipdo.sandbox import Sandbox
from sipdo.verifiers import CodeTask, VerifierConfig, analyze_mutants, averify_task, verify_task

CLAMP_REF = '''
def clamp_sum(xs: list[int], lo: int, hi: int) -> int:
    """Sum of xs, each clamped into [lo, hi] (lo <= hi)."""
    total = 0
    for x in xs:
        if x < lo:
            total += lo
        elif x > hi:
            total += hi
        else:
            total += x
    return total
'''
CLAMP_TESTS = """
from solution import clamp_sum

def test_inside():
    assert clamp_sum([3, 4], 0, 10) == 7

def test_clamped():
    assert clamp_sum([-5, 5, 50], 0, 10) == 15

def test_bounds_exact():
    assert clamp_sum([0, 10], 0, 10) == 10

def test_empty():
    assert clamp_sum([], 1, 2) == 0
"""
CLAMP = CodeTask(prompt="def clamp_sum(xs, lo, hi): ...", entry_point="clamp_sum",
                 reference_solution=CLAMP_REF, tests=CLAMP_TESTS)  # fmt: skip
ONLY_TESTS = VerifierConfig(n_standard=0, n_extended=150)


def test_sound_task_is_accepted(process_sandbox: Sandbox) -> None:
    verdict = verify_task(CLAMP, sandbox=process_sandbox)
    assert verdict.passed, verdict.feedback
    for name in ("reference", "deterministic", "timeouts", "mutation"):
        check = verdict.check(name)
        assert check is not None, (name, check)
        assert check.passed, (name, check)
    mutation = verdict.check("mutation")
    assert mutation is not None
    assert mutation.score >= 0.8
    assert len(mutation.data["mutants"]) >= 10


def test_weak_tests_are_rejected_and_survivors_named(process_sandbox: Sandbox) -> None:
    # One test and no standard differential inputs: many mutants survive.
    weak = CLAMP.model_copy(
        update={
            "tests": "from solution import clamp_sum\n\ndef test_one():\n    assert clamp_sum([], 0, 10) == 0\n",  # noqa: E501
            "input_strategy": "strategy = st.tuples(st.lists(st.integers(-20, 20)), st.just(0), st.just(10))",  # noqa: E501
        }
    )
    verdict = verify_task(weak, sandbox=process_sandbox, config=ONLY_TESTS)
    assert not verdict.passed
    mutation = verdict.check("mutation")
    assert mutation is not None
    assert not mutation.passed
    assert mutation.score < 0.8
    assert "surviving" in mutation.detail
    assert "line" in mutation.detail
    assert "mutation" in verdict.feedback


def test_reference_failing_its_tests_is_rejected(process_sandbox: Sandbox) -> None:
    bad = CLAMP.model_copy(
        update={"reference_solution": CLAMP_REF.replace("total += hi", "total += lo")}
    )
    verdict = verify_task(bad, sandbox=process_sandbox)
    assert not verdict.passed
    assert not verdict.check("reference").passed  # type: ignore[union-attr]
    assert "test_clamped" in verdict.feedback


def test_nondeterministic_reference_is_rejected(process_sandbox: Sandbox) -> None:
    ref = "import os\n\ndef token(n: int) -> int:\n    return n + int.from_bytes(os.urandom(2), 'big') % 2\n"  # noqa: E501
    tests = "from solution import token\n\ndef test_big():\n    assert token(5) >= 5\n"
    task = CodeTask(prompt="", entry_point="token", reference_solution=ref, tests=tests)
    verdict = verify_task(task, sandbox=process_sandbox)
    assert not verdict.passed
    assert not verdict.check("deterministic").passed  # type: ignore[union-attr]


def test_reference_timing_out_is_rejected(process_sandbox: Sandbox) -> None:
    ref = "def spin(n: int) -> int:\n    while n == 3:\n        pass\n    return n\n"
    tests = "from solution import spin\n\ndef test_spin():\n    assert spin(3) == 3\n"
    task = CodeTask(prompt="", entry_point="spin", reference_solution=ref, tests=tests)
    verdict = verify_task(
        task, sandbox=process_sandbox, config=VerifierConfig(reference_call_budget_s=0.5)
    )
    assert not verdict.passed
    assert not verdict.check("timeouts").passed  # type: ignore[union-attr]
    assert "spin(3)" in verdict.feedback


def test_consensus_with_checker(process_sandbox: Sandbox) -> None:
    agreeing = "def clamp_sum(xs, lo, hi):\n    return sum(min(max(x, lo), hi) for x in xs)\n"
    verdict = verify_task(CLAMP, sandbox=process_sandbox, checker_solution=agreeing)
    consensus = verdict.check("consensus")
    assert consensus is not None
    # lo > hi is outside the stated contract and the two disagree there; in-contract they agree.
    disagreeing = "def clamp_sum(xs, lo, hi):\n    return sum(max(x, lo) for x in xs)\n"
    bad = verify_task(CLAMP, sandbox=process_sandbox, checker_solution=disagreeing)
    check = bad.check("consensus")
    assert not bad.passed
    assert check is not None
    assert not check.passed
    assert check.data["distinguishing_input"].startswith("clamp_sum(")
    assert "differ on" in bad.feedback
    assert consensus.score > check.score


def test_broken_task_sources_are_rejected_not_raised(process_sandbox: Sandbox) -> None:
    no_parse = CLAMP.model_copy(update={"tests": "def test_x(:\n"})
    verdict = verify_task(no_parse, sandbox=process_sandbox)
    assert not verdict.passed
    assert "tests do not parse" in verdict.feedback
    no_entry = CLAMP.model_copy(update={"reference_solution": "def other():\n    return 1\n"})
    verdict = verify_task(no_entry, sandbox=process_sandbox)
    assert not verdict.passed
    assert "no top-level function" in verdict.feedback


async def test_async_twin(process_sandbox: Sandbox) -> None:
    verdict = await averify_task(CLAMP, sandbox=process_sandbox)
    assert verdict.passed, verdict.feedback


def test_analyze_mutants_reports_each_mutant(process_sandbox: Sandbox) -> None:
    fates = analyze_mutants(CLAMP, sandbox=process_sandbox)
    assert fates
    assert all(f.mutant.description.startswith("line ") for f in fates)
    live = [f for f in fates if f.distinguishable]
    assert live
    assert all(f.witness for f in live)
    assert sum(f.killed for f in live) / len(live) >= 0.8


def test_unserializable_test_arguments_are_flagged(process_sandbox: Sandbox) -> None:
    ref = "def apply(f, x: int) -> int:\n    return f(x)\n"
    tests = "from solution import apply\n\ndef test_apply():\n    assert apply(lambda v: v + 1, 1) == 2\n"  # noqa: E501
    task = CodeTask(prompt="", entry_point="apply", reference_solution=ref, tests=tests)
    verdict = verify_task(task, sandbox=process_sandbox)
    check = verdict.check("serializable")
    assert check is not None
    assert not check.passed
    assert not verdict.passed
