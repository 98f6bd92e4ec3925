"""verify_solution on the process backend: tests, differential testing, timing, feedback."""

from __future__ import annotations

import pytest

from sipdo.errors import ConfigurationError, VerificationError
from sipdo.sandbox import Sandbox
from sipdo.verifiers import (
    CodeTask,
    CodeVerifier,
    Verifier,
    VerifierConfig,
    averify_solution,
    verify_solution,
)


def make_task(ref: str, tests: str, entry: str, **extra: str) -> CodeTask:
    return CodeTask(
        prompt=f"def {entry}(...): ...",
        entry_point=entry,
        reference_solution=ref,
        tests=tests,
        **extra,
    )


MEAN = make_task(
    "def mean(xs: list[float]) -> float:\n"
    "    if not xs:\n"
    "        return float('nan')\n"
    "    return sum(xs) / len(xs)\n",
    "from solution import mean\nimport math\n\n"
    "def test_mean():\n    assert mean([1.0, 2.0, 3.0]) == 2.0\n\n"
    "def test_empty():\n    assert math.isnan(mean([]))\n",
    "mean",
)

FIRST = make_task(
    "def first(xs: list[int]) -> int:\n    if not xs:\n        raise ValueError('empty')\n    return xs[0]\n",  # noqa: E501
    "import pytest\nfrom solution import first\n\n"
    "def test_first():\n    assert first([4, 5]) == 4\n\n"
    "def test_empty():\n    with pytest.raises(ValueError):\n        first([])\n",
    "first",
)

SORT_IN_PLACE = make_task(
    "def sort_in_place(xs: list[int]) -> None:\n    xs.sort()\n",
    "from solution import sort_in_place\n\n"
    "def test_returns_none():\n    assert sort_in_place([2, 1]) is None\n",
    "sort_in_place",
)


def test_correct_alternative_passes(process_sandbox: Sandbox, squares_task: CodeTask) -> None:
    candidate = "def sum_of_squares(xs):\n    return sum(x * x for x in xs if not x % 2)\n"
    verdict = verify_solution(squares_task, candidate, sandbox=process_sandbox)
    assert verdict.passed, verdict.feedback
    assert verdict.score == 1.0
    assert verdict.check("tests") is not None
    assert verdict.check("tests").passed
    diff = verdict.check("differential")
    assert diff is not None
    assert diff.passed
    assert diff.data["inputs"] > 30


def test_differential_catches_what_the_tests_miss(
    process_sandbox: Sandbox, squares_task: CodeTask
) -> None:
    candidate = (
        "def sum_of_squares(xs):\n    return sum(x * x for x in xs if x % 2 == 0 and x != 6)\n"
    )
    verdict = verify_solution(squares_task, candidate, sandbox=process_sandbox)
    assert not verdict.passed
    assert verdict.check("tests").passed  # type: ignore[union-attr]
    assert not verdict.check("differential").passed  # type: ignore[union-attr]
    assert verdict.counterexample is not None
    assert verdict.counterexample == "sum_of_squares([6])"  # shrunk to the smallest failing input
    assert "expected" in verdict.feedback
    assert "got" in verdict.feedback
    assert 0.0 < verdict.score < 1.0


def test_float_tolerance_and_nan(process_sandbox: Sandbox) -> None:
    close = "import math\ndef mean(xs):\n    return math.fsum(xs) / len(xs) if xs else math.nan\n"
    assert verify_solution(MEAN, close, sandbox=process_sandbox).passed
    off = "import math\ndef mean(xs):\n    return sum(xs) / len(xs) + 1e-3 if xs else math.nan\n"
    assert not verify_solution(MEAN, off, sandbox=process_sandbox).passed
    no_nan = "def mean(xs):\n    return sum(xs) / len(xs) if xs else 0.0\n"
    verdict = verify_solution(MEAN, no_nan, sandbox=process_sandbox)
    assert not verdict.passed
    assert "nan" in verdict.feedback


def test_exceptions_are_compared_by_type(process_sandbox: Sandbox) -> None:
    same_type = "def first(xs):\n    if len(xs) == 0:\n        raise ValueError('no items')\n    return xs[0]\n"  # noqa: E501
    assert verify_solution(FIRST, same_type, sandbox=process_sandbox).passed
    other_type = "def first(xs):\n    return xs[0]\n"
    verdict = verify_solution(FIRST, other_type, sandbox=process_sandbox)
    assert not verdict.passed
    assert "raised IndexError" in verdict.feedback


def test_in_place_mutation_is_compared(process_sandbox: Sandbox) -> None:
    verdict = verify_solution(
        SORT_IN_PLACE, "def sort_in_place(xs):\n    sorted(xs)\n", sandbox=process_sandbox
    )
    assert not verdict.passed
    assert "arguments after the call" in verdict.feedback
    good = "def sort_in_place(xs):\n    xs[:] = sorted(xs)\n"
    assert verify_solution(SORT_IN_PLACE, good, sandbox=process_sandbox).passed


def test_slow_but_correct_passes_and_infinite_loop_fails(
    process_sandbox: Sandbox, squares_task: CodeTask
) -> None:
    slow = (
        "import time\n"
        "def sum_of_squares(xs):\n"
        "    time.sleep(0.002)\n"
        "    return sum(x * x for x in xs if x % 2 == 0)\n"
    )
    assert verify_solution(squares_task, slow, sandbox=process_sandbox).passed
    loop = "def sum_of_squares(xs):\n    while xs:\n        pass\n    return 0\n"
    verdict = verify_solution(squares_task, loop, sandbox=process_sandbox)
    assert not verdict.passed
    assert "timed out" in verdict.feedback


def test_syntax_error_and_missing_entry_point(
    process_sandbox: Sandbox, squares_task: CodeTask
) -> None:
    verdict = verify_solution(
        squares_task, "def sum_of_squares(xs):\n    return (\n", sandbox=process_sandbox
    )
    assert not verdict.passed
    assert "does not parse" in verdict.feedback
    verdict = verify_solution(
        squares_task, "def other(xs):\n    return 0\n", sandbox=process_sandbox
    )
    assert not verdict.passed
    assert "lacks sum_of_squares" in verdict.feedback


def test_broken_reference_is_a_verification_error(
    process_sandbox: Sandbox, squares_task: CodeTask
) -> None:
    broken = squares_task.model_copy(
        update={"reference_solution": "def sum_of_squares(xs):\n    return 1\n"}
    )
    with pytest.raises(VerificationError, match="fails its own tests"):
        verify_solution(broken, "def sum_of_squares(xs):\n    return 1\n", sandbox=process_sandbox)
    no_entry = squares_task.model_copy(update={"reference_solution": "def nope():\n    pass\n"})
    with pytest.raises(VerificationError, match="no top-level function"):
        verify_solution(no_entry, "x = 1\n", sandbox=process_sandbox)


def test_task_supplied_strategy_is_used(process_sandbox: Sandbox, squares_task: CodeTask) -> None:
    # Wrong only on big numbers: the tests' small domain misses it, the task's strategy does not.
    candidate = (
        "def sum_of_squares(xs):\n    return sum(x * x for x in xs if x % 2 == 0 and x < 5000)\n"
    )
    assert verify_solution(squares_task, candidate, sandbox=process_sandbox).passed
    strategic = squares_task.model_copy(
        update={
            "input_strategy": "strategy = st.tuples(st.lists(st.integers(5000, 6000), min_size=1))"
        }
    )
    verdict = verify_solution(strategic, candidate, sandbox=process_sandbox)
    assert not verdict.passed
    assert verdict.counterexample is not None


def test_hash_order_is_fixed_across_runs(process_sandbox: Sandbox) -> None:
    task = make_task(
        "def unique(words: list[str]) -> list[str]:\n    return list(set(words))\n",
        "from solution import unique\n\ndef test_one():\n    assert sorted(unique(['b', 'a', 'b'])) == ['a', 'b']\n",  # noqa: E501
        "unique",
    )
    candidate = "def unique(words):\n    return list({w for w in words})\n"
    assert verify_solution(task, candidate, sandbox=process_sandbox).passed


def test_tests_replay_when_outputs_feed_later_calls(process_sandbox: Sandbox) -> None:
    task = make_task(
        "def step(n: int) -> int:\n    return n // 2 if n % 2 == 0 else 3 * n + 1\n",
        "from solution import step\n\n"
        "def test_chain():\n    n = 6\n    for _ in range(8):\n        n = step(n)\n    assert n == 1\n",  # noqa: E501
        "step",
    )
    wrong = "def step(n):\n    return n // 2 if n % 2 == 0 else 3 * n + 2\n"
    verdict = verify_solution(task, wrong, sandbox=process_sandbox)
    assert not verdict.passed
    assert not verdict.check("tests").passed  # type: ignore[union-attr]
    assert "test_chain" in verdict.feedback


def test_keyword_arguments_in_tests(process_sandbox: Sandbox) -> None:
    task = make_task(
        "def scale(xs: list[int], k: int = 2) -> list[int]:\n    return [x * k for x in xs]\n",
        "from solution import scale\n\ndef test_kw():\n    assert scale(xs=[1, 2], k=3) == [3, 6]\n",  # noqa: E501
        "scale",
    )
    assert verify_solution(
        task, "def scale(xs, k=2):\n    return [k * x for x in xs]\n", sandbox=process_sandbox
    ).passed
    assert not verify_solution(
        task, "def scale(xs, k=2):\n    return [2 * x for x in xs]\n", sandbox=process_sandbox
    ).passed


async def test_async_twin_and_protocol(process_sandbox: Sandbox, squares_task: CodeTask) -> None:
    wrong = "def sum_of_squares(xs):\n    return sum(x * x for x in xs)\n"
    sync = verify_solution(squares_task, wrong, sandbox=process_sandbox)
    verdict = await averify_solution(squares_task, wrong, sandbox=process_sandbox)
    assert verdict.passed is sync.passed is False
    assert verdict.counterexample == sync.counterexample
    verifier = CodeVerifier(process_sandbox)
    assert isinstance(verifier, Verifier)
    assert not (await verifier.averify(squares_task, wrong)).passed


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ConfigurationError):
        VerifierConfig(mutation_threshold=1.5)
    with pytest.raises(ConfigurationError):
        VerifierConfig(tests_file="solution.py")
    with pytest.raises(ConfigurationError):
        VerifierConfig(time_factor=0)
