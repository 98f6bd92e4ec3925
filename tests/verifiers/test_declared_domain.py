"""A candidate's own input validation beyond the tests' range is not a wrong answer.

The tasks state a precondition their tests never cross ("at least two
numbers", "base is 2 to 9") and a reference that answers outside it anyway.
Each case shows one side of the rule in ``sipdo.verifiers.domain``: the
validating answer passes (and fails with the rule off, so the rule is what
accepts it), while crashes, re-raised crashes, the standard library's own
errors, refusals inside the tests' range, a table of the tests' answers
that refuses everything else, and refusals inside a *written* precondition all
still fail. A checker's solution that validates agrees with the reference in
``verify_task``'s consensus check.
"""

from __future__ import annotations

import pytest

from sipdo.evaluation.engine import grading_rules
from sipdo.sandbox import Sandbox
from sipdo.verifiers import CodeTask, VerifierConfig, verify_solution, verify_task
from sipdo.verifiers.domain import Envelope, declined, excused
from sipdo.verifiers.harness import codec

LOOP = (
    "    best = None\n"
    "    for i in range(len(numbers)):\n"
    "        for j in range(i + 1, len(numbers)):\n"
    "            d = abs(numbers[i] - numbers[j])\n"
    "            if best is None or d < best[0]:\n"
    "                best = (d, tuple(sorted((numbers[i], numbers[j]))))\n"
    "    return best[1]\n"
)
CLOSEST = CodeTask(
    prompt=(
        "def closest_pair(numbers: list[int]) -> tuple[int, int]:\n"
        "    '''The two closest numbers of a list of at least two, smaller first.'''\n"
    ),
    entry_point="closest_pair",
    reference_solution="def closest_pair(numbers):\n"
    + LOOP.replace("return best[1]", "return None if best is None else best[1]"),
    tests=(
        "from solution import closest_pair\n\n"
        "def test_pairs():\n"
        "    assert closest_pair([1, 5, 3]) == (1, 3)\n"
        "    assert closest_pair([10, 4, 7, 20]) == (7, 10)\n"
        "    assert closest_pair([8, 1, 30, 2, 50]) == (1, 2)\n"
    ),
)
VALIDATES = (
    "def closest_pair(numbers):\n"
    "    if len(numbers) < 2:\n"
    "        raise ValueError('need at least two numbers')\n" + LOOP
)
ASSERTS = "def closest_pair(numbers):\n    assert len(numbers) >= 2, 'too short'\n" + LOOP
HELPER = (
    "def _check(numbers):\n"
    "    if len(numbers) < 2:\n"
    "        raise ValueError('need at least two numbers')\n\n"
    "def closest_pair(numbers):\n    _check(numbers)\n" + LOOP
)
CRASHES = "def closest_pair(numbers):\n    numbers[1]\n" + LOOP  # IndexError on one number
RERAISES = (
    "def closest_pair(numbers):\n"
    "    try:\n        numbers[1]\n    except IndexError:\n        raise\n" + LOOP
)
STDLIB = (  # statistics raises on one number: the library's raise, not the candidate's
    "import statistics\n\ndef closest_pair(numbers):\n    statistics.variance(numbers)\n" + LOOP
)
REFUSES_INSIDE = (  # the tests pass lists of 3 to 5 numbers: refusing 3 of them is wrong
    "def closest_pair(numbers):\n"
    "    if len(numbers) < 2 or (len(numbers) == 3 and numbers[0] > numbers[2]):\n"
    "        raise ValueError('unsupported')\n" + LOOP
)
TABLE = (
    "def closest_pair(numbers):\n"
    "    known = {(1, 5, 3): (1, 3), (10, 4, 7, 20): (7, 10), (8, 1, 30, 2, 50): (1, 2)}\n"
    "    if tuple(numbers) not in known:\n"
    "        raise ValueError('outside my domain')\n"
    "    return known[tuple(numbers)]\n"
)

TO_BASE = CodeTask(
    prompt=("def to_base(x: int, base: int) -> str:\n    '''x >= 0 written in base 2 to 9.'''\n"),
    entry_point="to_base",
    reference_solution=(
        "def to_base(x, base):\n"
        "    out = ''\n"
        "    while x > 0:\n"
        "        out = str(x % base) + out\n"
        "        x //= base\n"
        "    return out or '0'\n"
    ),
    tests=(
        "from solution import to_base\n\n"
        "def test_bases():\n"
        "    assert to_base(8, 3) == '22'\n"
        "    assert to_base(8, 2) == '1000'\n"
        "    assert to_base(7, 2) == '111'\n"
        "    assert to_base(81, 9) == '100'\n"
        "    assert to_base(0, 5) == '0'\n"
        "    assert to_base(1000, 7) == '2626'\n"
    ),
)
BASE_VALIDATES = (
    "def to_base(x, base):\n"
    "    if not 2 <= base <= 9:\n"
    "        raise ValueError('base must be 2 to 9')\n"
    "    digits = []\n"
    "    while x:\n"
    "        x, r = divmod(x, base)\n"
    "        digits.append(str(r))\n"
    "    return ''.join(reversed(digits)) or '0'\n"
)


def _declined_count(verdict: object) -> int:
    checks = [c for c in verdict.checks if c.name == "declared domain"]  # type: ignore[attr-defined]
    return int(checks[0].data["inputs"]) if checks else 0


def test_validating_a_stated_precondition_passes_on_every_backend(sandbox: Sandbox) -> None:
    verdict = verify_solution(CLOSEST, VALIDATES, sandbox=sandbox)
    assert verdict.passed, verdict.feedback
    assert _declined_count(verdict) > 0
    [check] = [c for c in verdict.checks if c.name == "declared domain"]
    assert "raised ValueError" in check.detail
    assert "closest_pair([" in check.detail


def test_the_rule_is_what_accepts_it(process_sandbox: Sandbox) -> None:
    off = VerifierConfig(declared_domain=False)
    verdict = verify_solution(CLOSEST, VALIDATES, sandbox=process_sandbox, config=off)
    assert not verdict.passed
    assert "got raised ValueError" in verdict.feedback
    assert _declined_count(verdict) == 0


@pytest.mark.parametrize("source", [ASSERTS, HELPER], ids=["assert", "helper"])
def test_asserts_and_helpers_of_the_candidate_count_as_its_own(
    process_sandbox: Sandbox, source: str
) -> None:
    verdict = verify_solution(CLOSEST, source, sandbox=process_sandbox)
    assert verdict.passed, verdict.feedback
    assert _declined_count(verdict) > 0


@pytest.mark.parametrize(
    ("source", "why"),
    [
        (CRASHES, "IndexError"),
        (RERAISES, "IndexError"),
        (STDLIB, "StatisticsError"),
        (REFUSES_INSIDE, "ValueError"),
    ],
    ids=["crash", "re-raised crash", "standard library", "refuses inside the tests' range"],
)
def test_crashes_and_refusals_inside_the_range_still_fail(
    process_sandbox: Sandbox, source: str, why: str
) -> None:
    verdict = verify_solution(CLOSEST, source, sandbox=process_sandbox)
    assert not verdict.passed
    assert f"got raised {why}" in verdict.feedback


def test_a_table_of_the_tests_answers_is_compared_everywhere(process_sandbox: Sandbox) -> None:
    verdict = verify_solution(CLOSEST, TABLE, sandbox=process_sandbox)
    assert not verdict.passed
    assert _declined_count(verdict) == 0  # it declines more than half: nothing is excused
    assert "got raised ValueError" in verdict.feedback


def test_numbers_beyond_the_tests_range(process_sandbox: Sandbox) -> None:
    verdict = verify_solution(TO_BASE, BASE_VALIDATES, sandbox=process_sandbox)
    assert verdict.passed, verdict.feedback
    assert _declined_count(verdict) > 0
    off = VerifierConfig(declared_domain=False)
    assert not verify_solution(TO_BASE, BASE_VALIDATES, sandbox=process_sandbox, config=off).passed


def _inp(*args: object, **kwargs: object) -> dict[str, object]:
    return codec.encode_call(args, kwargs)


def test_envelope_ranges() -> None:
    env = Envelope.of([_inp([1, 5, 3], 2), _inp([10, 4, 7, 20], 9)])
    assert not env.beyond(_inp([4, 4, 4], 5))  # lengths 3..4, elements 1..20, numbers 2..9
    assert env.beyond(_inp([4], 5))  # shorter than any list the tests pass
    assert env.beyond(_inp([4, 4, 4, 4, 4], 5))  # longer
    assert env.beyond(_inp([4, 40, 4], 5))  # an element larger than any
    assert env.beyond(_inp([4, 4, 4], 1))  # a number below the tests' range
    assert env.beyond(_inp(["a", "b", "c"], 5))  # a kind of element the tests never pass
    assert env.beyond(_inp([4, 4, 4], 5, k=1))  # a keyword the tests never pass
    assert not Envelope.of([]).beyond(_inp([4], 5))  # no tests' calls: nothing is beyond


def test_only_own_raises_on_generated_inputs_are_excused() -> None:
    env = Envelope.of([_inp([1, 5, 3])])
    own = {"r": {"raise": "ValueError", "own": True}, "post": []}
    crash = {"r": {"raise": "ValueError"}, "post": []}
    answer = {"r": {"ok": 1}, "post": []}
    assert declined(own)
    assert not any(declined(a) for a in (crash, answer, None))
    assert excused(own, "std", _inp([1]), env)
    assert not excused(own, "test", _inp([1]), env)  # the tests' own calls: always compared
    assert not excused(own, "std", _inp([1, 2, 3]), env)  # inside the range
    assert not excused(crash, "std", _inp([1]), env)


def test_eval_identity_names_the_grading_rules() -> None:
    assert grading_rules(None) == {"grading": "declared-domain"}
    assert grading_rules(VerifierConfig(declared_domain=False)) == {}


def test_a_written_precondition_is_the_domain(process_sandbox: Sandbox) -> None:
    # The task says exactly where it is defined: one number is inside, so refusing it is wrong.
    written = CLOSEST.model_copy(update={"precondition": "len(numbers) >= 1"})
    verdict = verify_solution(written, VALIDATES, sandbox=process_sandbox)
    assert not verdict.passed
    assert "got raised ValueError" in verdict.feedback
    assert _declined_count(verdict) == 0


def test_a_checker_that_validates_agrees_with_the_reference(process_sandbox: Sandbox) -> None:
    verdict = verify_task(CLOSEST, sandbox=process_sandbox, checker_solution=VALIDATES)
    [consensus] = [c for c in verdict.checks if c.name == "consensus"]
    assert consensus.passed, consensus.detail
    assert "declined by the checker's own raise/assert" in consensus.detail
    off = VerifierConfig(declared_domain=False)
    verdict = verify_task(CLOSEST, sandbox=process_sandbox, checker_solution=VALIDATES, config=off)
    [consensus] = [c for c in verdict.checks if c.name == "consensus"]
    assert not consensus.passed
    assert "checker raised ValueError" in consensus.detail
