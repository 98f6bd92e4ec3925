"""``--fix-suggestions``: what would make a rejected task acceptable (off by default).

For each failing check of a rejected task, one line of advice. For weak
tests (the ``mutation`` check), concrete pytest tests: the inputs that tell
surviving mutants apart from the reference (the verdict's witnesses) are run
on the reference in the sandbox, its outputs become assertions, and the task
with those tests added is verified again, so the suggestion comes with the
mutation score it reaches. The suggested assertions pin the reference's
behaviour: they are only as right as the reference, so review them before
adopting. A failing sample in ``solutions`` mode gets its counterexample as
the advice (the verdict's feedback already says what differs).
"""

from __future__ import annotations

import ast
import json
from typing import TYPE_CHECKING, Any

from sipdo import pycode
from sipdo.verifiers.api import averify_task
from sipdo.verifiers.types import Verdict

if TYPE_CHECKING:
    from sipdo.sandbox.base import Sandbox
    from sipdo.verifiers.rowcheck import Item, RowSpec

ADVICE = {
    "reference": "the reference fails its own tests: fix the reference or the failing test",
    "tests": "the tests do not parse: fix their syntax",
    "serializable": "the tests pass arguments that cannot be serialized: use plain data",
    "deterministic": "two runs disagree: remove randomness, time and set-order dependence "
    "from the reference and the tests",
    "timeouts": "the reference is too slow on some test input: make it faster or the input smaller",
    "mutation": "the tests miss mutants of the reference: add the suggested tests",
    "consensus": "an independent solution disagrees with the reference: check the spec",
}
_MAX_WITNESSES = 5
# Prints the reference's outcome on each witness call as one JSON line.
_PROBE = """
import json, sys
from solution import *
for text in json.loads(sys.stdin.read()):
    try:
        value = eval(text)
        print(json.dumps(["ok", text, repr(value), isinstance(value, float)]))
    except Exception as exc:
        print(json.dumps(["raises", text, type(exc).__name__, False]))
"""


def _witnesses(verdict: Verdict) -> list[str]:
    check = verdict.check("mutation")
    mutants: list[dict[str, Any]] = check.data.get("mutants", []) if check is not None else []
    found = [
        m["witness"]
        for m in mutants
        if m.get("distinguishable")
        and not (m.get("by_tests") or m.get("by_differential"))
        and m.get("witness")
    ]
    return list(dict.fromkeys(found))[:_MAX_WITNESSES]


def _assertion(n: int, outcome: list[Any]) -> str | None:
    kind, call, value, is_float = outcome
    if kind == "raises":
        if not (isinstance(value, str) and value.isidentifier() and value in dir(__builtins__)):
            return None
        return f"def test_suggested_{n}():\n    with pytest.raises({value}):\n        {call}\n"
    if not isinstance(value, str):
        return None
    try:  # only values that read back as Python literals
        ast.literal_eval(pycode.parse(value.lstrip(" \t"), mode="eval"))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    expected = f"pytest.approx({value})" if is_float else value
    return f"def test_suggested_{n}():\n    assert {call} == {expected}\n"


async def suggest_fix(
    item: Item, verdict: Verdict, sandbox: Sandbox, spec: RowSpec
) -> dict[str, Any]:
    """Advice per failing check, plus verified test suggestions for weak tests."""
    if spec.mode == "solutions":
        return {
            "advice": [f"differs from the reference on {verdict.counterexample}"]
            if verdict.counterexample
            else [verdict.feedback.split("\n", 1)[0]]
        }
    assert item.task is not None
    advice = [ADVICE.get(c.name, f"{c.name}: {c.detail}") for c in verdict.checks if not c.passed]
    witnesses = _witnesses(verdict)
    if not witnesses:
        return {"advice": advice}
    result = await sandbox.arun(
        {"solution.py": item.task.reference_solution, "_sipdo_probe.py": _PROBE},
        ["python", "_sipdo_probe.py"],
        stdin=json.dumps(witnesses),
        limits=sandbox.limits.replace(timeout_s=30.0),
    )
    outcomes = []
    for line in result.stdout.splitlines():
        try:
            outcomes.append(json.loads(line))
        except ValueError:
            continue
    tests = [t for n, o in enumerate(outcomes) if (t := _assertion(n, o)) is not None]
    if not tests:
        return {"advice": advice}
    suggested = "import pytest\n\n" + "\n\n".join(tests)
    stronger = item.task.model_copy(update={"tests": item.task.tests + "\n\n" + suggested})
    after = await averify_task(stronger, sandbox=sandbox, config=spec.config)
    mutation = after.check("mutation")
    return {
        "advice": advice,
        "suggested_tests": suggested,
        "accepted_with_suggested_tests": after.passed,
        "mutation_score_with_suggested_tests": mutation.score if mutation is not None else None,
    }
