"""Input contracts and the argument policy: correct answers accepted, real bugs still caught.

Each case is one a held-out run rejected although the answer was right within
the task's stated domain (issue 17): unequal-length lists where equal length is
required, ``n = 0`` where the statement assumes ``n > 1``, strings outside the
stated format, inputs on which the reference itself raises, the reference's
own in-place sort. Where a switch exists (``precondition="True"`` turns the
inferred contract off, ``argument_policy="output"`` grades arguments), the old
rejection is shown too, so the test proves the contract is what accepts it.
"""

from __future__ import annotations

import pytest

from sipdo.plugins.domains.code import CodeDomain, parse_generated_markdown
from sipdo.sandbox import Sandbox
from sipdo.verifiers import CodeTask, verify_solution, verify_task
from sipdo.verifiers.contract import argument_policy, stated_policy
from sipdo.verifiers.formats import RowError, task_from_row
from sipdo.verifiers.harness import codec
from sipdo.verifiers.harness import contract as contracts


def task(ref: str, tests: str, entry: str, prompt: str = "", **extra: str) -> CodeTask:
    return CodeTask(
        prompt=prompt or f"def {entry}(...): ...",
        entry_point=entry,
        reference_solution=ref,
        tests=tests,
        **extra,  # type: ignore[arg-type]
    )


DOT = task(
    "def dot(xs: list[int], ys: list[int]) -> int:\n"
    "    return sum(x * y for x, y in zip(xs, ys))\n",
    "from solution import dot\n\n"
    "def test_dot():\n    assert dot([1, 2, 3], [4, 5, 6]) == 32\n\n"
    "def test_short():\n    assert dot([2], [7]) == 14\n\n"
    "def test_neg():\n    assert dot([-1, 0], [3, 9]) == -3\n",
    "dot",
    "def dot(xs, ys):\n    '''Dot product; xs and ys have equal length.'''\n",
)
DOT_BY_INDEX = (
    "def dot(xs, ys):\n    t = 0\n    for i in range(len(xs)):\n        t += xs[i] * ys[i]\n"
    "    return t\n"
)
DOT_SKIPS_LAST = (
    "def dot(xs, ys):\n    t = 0\n    for i in range(min(len(xs), 3)):\n"
    "        t += xs[i] * ys[i]\n    return t\n"
)

LPF = task(
    "def largest_prime_factor(n: int) -> int:\n"
    "    def is_prime(k):\n        return k > 1 and all(k % d for d in range(2, k))\n"
    "    largest = 1\n    for j in range(2, n + 1):\n"
    "        if n % j == 0 and is_prime(j):\n            largest = j\n    return largest\n",
    "from solution import largest_prime_factor\n\n"
    "def test_lpf():\n    assert largest_prime_factor(15) == 5\n"
    "    assert largest_prime_factor(330) == 11\n    assert largest_prime_factor(2431) == 17\n",
    "largest_prime_factor",
    "def largest_prime_factor(n: int) -> int:\n"
    "    '''Largest prime factor of n. Assume n > 1 and is not a prime.'''\n",
)
LPF_TRIAL = (
    "def largest_prime_factor(n):\n    f = 2\n    while f * f <= n:\n"
    "        if n % f == 0:\n            n //= f\n        else:\n            f += 1\n    return n\n"
)
LPF_STRICT = LPF_TRIAL.replace("f * f <= n", "f * f < n")  # wrong on 4, 9, 16, 18, ...

FRUIT = task(
    "def fruit_distribution(s: str, n: int) -> int:\n"
    "    return n - sum(int(w) for w in s.split(' ') if w.isdigit())\n",
    "from solution import fruit_distribution\n\n"
    "def test_fruit():\n"
    "    assert fruit_distribution('5 apples and 6 oranges', 19) == 8\n"
    "    assert fruit_distribution('0 apples and 1 oranges', 3) == 2\n"
    "    assert fruit_distribution('2 apples and 3 oranges', 100) == 95\n",
    "fruit_distribution",
    "def fruit_distribution(s: str, n: int) -> int:\n"
    "    '''s is 'N apples and M oranges'; n fruits in all; return the mangoes.'''\n",
)
FRUIT_SPLIT = (
    "def fruit_distribution(s, n):\n    w = s.split()\n    return n - int(w[0]) - int(w[3])\n"
)
FRUIT_FIRST_DIGIT = (
    "def fruit_distribution(s, n):\n    w = s.split()\n    return n - int(s[0]) - int(w[3])\n"
)

RESCALE = task(
    "def rescale(xs: list[float]) -> list[float]:\n"
    "    lo, hi = min(xs), max(xs)\n    return [(x - lo) / (hi - lo) for x in xs]\n",
    "from solution import rescale\n\n"
    "def test_rescale():\n    assert rescale([1.0, 2.0, 3.0]) == [0.0, 0.5, 1.0]\n"
    "    assert rescale([4.0, 0.0, 2.0]) == [1.0, 0.0, 0.5]\n",
    "rescale",
)
RESCALE_CLEAR_ERROR = (
    "def rescale(xs):\n    lo, hi = min(xs), max(xs)\n    if hi == lo:\n"
    "        raise ValueError('all values are equal')\n"
    "    return [(x - lo) / (hi - lo) for x in xs]\n"
)
RESCALE_ROUNDED = (
    "def rescale(xs):\n    lo, hi = min(xs), max(xs)\n"
    "    return [round((x - lo) / (hi - lo), 1) for x in xs]\n"
)

MEDIAN = task(
    "def median(xs: list[int]) -> float:\n    xs.sort()\n    n = len(xs)\n"
    "    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2\n",
    "from solution import median\n\n"
    "def test_median():\n    assert median([3, 1, 2]) == 2\n"
    "    assert median([4, 1, 3, 2]) == 2.5\n",
    "median",
)
MEDIAN_COPY = (
    "def median(xs):\n    s = sorted(xs)\n    n = len(s)\n"
    "    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2\n"
)
MEDIAN_EVEN_BUG = "def median(xs):\n    s = sorted(xs)\n    return s[len(s) // 2]\n"


def test_unequal_lengths_are_outside_an_inferred_equal_length_contract(
    process_sandbox: Sandbox,
) -> None:
    assert verify_solution(DOT, DOT_BY_INDEX, sandbox=process_sandbox).passed
    off = DOT.model_copy(update={"precondition": "True"})
    before = verify_solution(off, DOT_BY_INDEX, sandbox=process_sandbox)
    assert not before.passed  # without the contract: compared on unequal lengths
    bug = verify_solution(DOT, DOT_SKIPS_LAST, sandbox=process_sandbox)
    assert not bug.passed
    assert bug.counterexample is not None


def test_inputs_below_the_stated_lower_bound_are_not_compared(process_sandbox: Sandbox) -> None:
    assert verify_solution(LPF, LPF_TRIAL, sandbox=process_sandbox).passed
    off = LPF.model_copy(update={"precondition": "True"})
    assert not verify_solution(off, LPF_TRIAL, sandbox=process_sandbox).passed  # n = 0
    bug = verify_solution(LPF, LPF_STRICT, sandbox=process_sandbox)
    assert not bug.passed
    assert bug.counterexample is not None
    assert "largest_prime_factor(0)" not in bug.counterexample


def test_strings_keep_the_tests_format(process_sandbox: Sandbox) -> None:
    assert verify_solution(FRUIT, FRUIT_SPLIT, sandbox=process_sandbox).passed
    off = FRUIT.model_copy(update={"precondition": "True"})
    assert not verify_solution(off, FRUIT_SPLIT, sandbox=process_sandbox).passed
    bug = verify_solution(FRUIT, FRUIT_FIRST_DIGIT, sandbox=process_sandbox)
    assert not bug.passed  # multi-digit counts come from variants of the tests' strings
    assert bug.counterexample is not None
    assert " apples and " in bug.counterexample


def test_inputs_on_which_the_reference_raises_are_never_compared(
    process_sandbox: Sandbox,
) -> None:
    verdict = verify_solution(RESCALE, RESCALE_CLEAR_ERROR, sandbox=process_sandbox)
    assert verdict.passed, verdict.feedback
    bug = verify_solution(RESCALE, RESCALE_ROUNDED, sandbox=process_sandbox)
    assert not bug.passed


def test_the_references_own_in_place_sort_is_not_required(process_sandbox: Sandbox) -> None:
    assert verify_solution(MEDIAN, MEDIAN_COPY, sandbox=process_sandbox).passed
    graded = MEDIAN.model_copy(update={"argument_policy": "output"})
    before = verify_solution(graded, MEDIAN_COPY, sandbox=process_sandbox)
    assert not before.passed
    assert "arguments after the call" in before.feedback
    assert not verify_solution(MEDIAN, MEDIAN_EVEN_BUG, sandbox=process_sandbox).passed


def test_arguments_that_must_not_change_are_graded(process_sandbox: Sandbox) -> None:
    frozen = task(
        "def smallest(xs: list[int]) -> int:\n    return sorted(xs)[0]\n",
        "from solution import smallest\n\ndef test_s():\n    assert smallest([3, 1, 2]) == 1\n",
        "smallest",
        "def smallest(xs):\n    '''Smallest element. Note: don't change the given list.'''\n",
    )
    sorts_in_place = "def smallest(xs):\n    xs.sort()\n    return xs[0]\n"
    verdict = verify_solution(frozen, sorts_in_place, sandbox=process_sandbox)
    assert not verdict.passed
    assert verify_solution(
        frozen, "def smallest(xs):\n    return min(xs)\n", sandbox=process_sandbox
    ).passed


def test_policy_reading() -> None:
    assert stated_policy("Note: * don't change the given array.") == "frozen"
    assert stated_policy("Sort the list in place.") == "output"
    assert stated_policy("Return the words without changing their order.") is None
    inp = {"args": [[2, 1]], "kwargs": {}}
    in_place = {"r": {"ok": None}, "post": [[1, 2], {"d": []}]}
    returns = {"r": {"ok": 1}, "post": [[1, 2], {"d": []}]}
    assert argument_policy(MEDIAN, [(inp, in_place)]) == "output"
    assert argument_policy(MEDIAN, [(inp, returns)]) == "free"
    assert codec.same_result(returns, {"r": {"ok": 1}, "post": [[2, 1]]}, "free", inp)
    assert not codec.same_result(returns, {"r": {"ok": 1}, "post": [[2, 1]]}, "output", inp)
    assert not codec.same_result(returns, returns, "frozen", inp)


def test_contract_inference_rules() -> None:
    calls = [["5 apples and 6 oranges", 19], ["0 apples and 1 oranges", 3]]
    c = contracts.infer(calls, 2)
    assert contracts.holds(c, ["12 apples and 30 oranges", 50])
    assert not contracts.holds(c, ["apples", 5])
    assert not contracts.holds(c, ["5 apples and 6 oranges", -1])
    lists = contracts.infer([[[1, 2], [3, 4]], [[0], [5]]], 2)
    assert lists["equal_len"] == [[0, 1]]
    assert contracts.holds(lists, contracts.repair(lists, [[1, 2, 3], [4]]))
    bits = contracts.infer([["0101", "1100"], ["1", "0"]], 2)
    assert not contracts.holds(bits, ["012", "110"])
    kept = [v for v in contracts.variants(calls, 40) if contracts.holds(c, v)]
    assert len(kept) >= 10
    assert any(int(v[0].split()[0]) >= 10 for v in kept)  # beyond the tests' own values


def test_written_precondition_is_used_and_checked(process_sandbox: Sandbox) -> None:
    written = LPF.model_copy(update={"precondition": "n > 1"})
    assert verify_solution(written, LPF_TRIAL, sandbox=process_sandbox).passed
    verdict = verify_task(written, sandbox=process_sandbox)
    check = verdict.check("contract")
    assert check is not None
    assert check.passed, verdict.feedback
    wrong = LPF.model_copy(update={"precondition": "n > 100"})
    verdict = verify_task(wrong, sandbox=process_sandbox)
    check = verdict.check("contract")
    assert check is not None
    assert not check.passed
    assert "largest_prime_factor(15)" in check.detail
    raising = RESCALE.model_copy(update={"precondition": "len(xs) > 0"})
    verdict = verify_task(raising, sandbox=process_sandbox)
    check = verdict.check("contract")
    assert check is not None
    assert not check.passed
    assert "ZeroDivisionError" in check.detail
    assert not verdict.passed


def test_generator_writes_a_precondition() -> None:
    reply = (
        "WEAKNESS: lower bounds\nPRECONDITION: `n > 1`\n\n"
        "```python\ndef half(n: int) -> int:\n    '''Half of n, n > 1.'''\n"
        "    return n // 2\n```\n\n"
        "```python\nfrom solution import half\n\ndef test_half():\n    assert half(4) == 2\n```\n"
    )
    generated = parse_generated_markdown(reply)
    assert generated.precondition == "n > 1"
    made = CodeDomain().task_from_generated(generated, difficulty=1, weakness="", provenance={})
    assert made["precondition"] == "n > 1"
    generated = generated.model_copy(update={"precondition": "n >"})
    made = CodeDomain().task_from_generated(generated, difficulty=1, weakness="", provenance={})
    assert made["precondition"] == ""  # unusable: the contract is inferred instead


@pytest.mark.parametrize("policy", ["free", "frozen", "output"])
def test_old_tasks_load_with_defaults(policy: str) -> None:
    old = {
        k: v for k, v in DOT.model_dump().items() if k not in ("precondition", "argument_policy")
    }
    assert CodeTask.model_validate(old).argument_policy == "auto"
    assert CodeTask.model_validate(old | {"argument_policy": policy}).argument_policy == policy


def test_user_rows_carry_a_contract() -> None:
    row = {
        "task_id": "user/1",
        "prompt": "def half(n: int) -> int:\n    '''Half of n.'''\n",
        "canonical_solution": "    return n // 2\n",
        "test": "def check(candidate):\n    assert candidate(4) == 2\n",
        "entry_point": "half",
        "precondition": "n > 1",
        "argument_policy": "frozen",
    }
    made = task_from_row(row)
    assert made.precondition == "n > 1"
    assert made.argument_policy == "frozen"
    with pytest.raises(RowError, match="precondition must be a string"):
        task_from_row(row | {"precondition": 3})
    assert task_from_row({k: v for k, v in row.items() if k != "precondition"}).precondition == ""
