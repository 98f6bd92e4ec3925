"""The reference run skips generated inputs past one it ran out of time on (``Growth``).

A reference that is exponential in ``n`` times out on every large ``n`` a generator
draws, a whole budget apiece (HumanEval/63's task check spent 52 s so); past the
first such input, larger ones are not called. An input the reference answered that
is at least as large shows the timeout was not about size, and nothing is skipped.
"""

from __future__ import annotations

from sipdo.sandbox import Sandbox
from sipdo.verifiers import CodeTask, VerifierConfig
from sipdo.verifiers.harness import codec
from sipdo.verifiers.reference import reference_flow
from sipdo.verifiers.runs import drive

SKIPPED = "timeout (skipped: larger than an input that timed out)"
CONFIG = VerifierConfig(reference_call_budget_s=0.5, reference_short_budget_s=0.25)


def _task(ref: str, tests: str) -> CodeTask:
    return CodeTask(
        prompt="def f(n: int) -> int: ...", entry_point="f", reference_solution=ref, tests=tests
    )


SLOW_IN_N = _task(
    "def f(n: int) -> int:\n    if n < 2:\n        return n\n    return f(n - 1) + f(n - 2)\n",
    "from solution import f\n\ndef test_f():\n    assert f(10) == 55\n    assert f(1) == 1\n",
)
STUCK_ON_SEVEN = _task(
    "def f(n: int) -> int:\n    while n == 7:\n        pass\n    return n + 1\n",
    "from solution import f\n\ndef test_f():\n    assert f(100) == 101\n    assert f(3) == 4\n",
)


def _ints(cases: list) -> list[int]:
    return [codec.decode(c.inp["args"][0]) for c in cases if c.group != "test"]


def test_inputs_past_a_timeout_are_skipped(process_sandbox: Sandbox) -> None:
    [ref] = drive(reference_flow(SLOW_IN_N, CONFIG), process_sandbox)
    assert ref.dropped.get(SKIPPED, 0) >= 1
    assert ref.dropped.get("timeout", 0) + ref.dropped.get("timeout (shortened budget)", 0) <= 3
    answered = _ints(ref.cases)
    assert answered  # the small inputs are still compared
    assert max(answered) < 40  # fib(40) by recursion would take minutes


def test_a_larger_answered_input_keeps_everything_called(process_sandbox: Sandbox) -> None:
    [ref] = drive(reference_flow(STUCK_ON_SEVEN, CONFIG), process_sandbox)
    assert SKIPPED not in ref.dropped
    assert any(n > 7 for n in _ints(ref.cases))
