"""What a task is defined on and what it promises: input contracts and the argument policy.

A held-out number is only worth reading if a correct answer is never failed
for something the task did not ask. Two rules decide what the differential
comparison looks at:

- **Input contract** (``CodeTask.precondition``). Generated inputs are kept
  only when the contract admits them. A written contract is one boolean
  expression over the parameter names or source defining
  ``precondition(<parameters>)`` (the generator writes one; a user may supply
  one); it is checked by ``verify_task``: every test input satisfies it and the
  reference raises inside it only what its tests expect. Without one, the
  contract is inferred from the arguments the tests pass
  (``harness/contract.py`` says which rules, read conservatively). Besides, a
  generated input on which the reference raises or times out is outside the
  task's domain and is never compared; the tests' own inputs always are.
- **Argument policy** (``CodeTask.argument_policy``): ``output`` (the arguments
  after the call are part of the result: in-place tasks), ``frozen`` (they
  must not change) or ``free`` (not graded: a candidate is never failed for not
  reproducing the reference's own side effect, such as sorting its argument in
  place). ``auto`` reads the prompt (``argument_policy``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from sipdo import pycode
from sipdo.pycode import find_entry_point
from sipdo.verifiers.harness import codec
from sipdo.verifiers.harness.contract import Contract, holds, infer, repair, value_holds, written
from sipdo.verifiers.types import CodeTask

ArgumentPolicy = Literal["free", "frozen", "output"]

_FROZEN = re.compile(
    r"\b(?:do not|don't|must not|should not|shall not|never|without)\s+"
    r"(?:chang|modif|mutat|alter)\w*\s+(?:the\s+|its\s+|any\s+)?"
    r"(?:given|input|original|passed|argument|parameter)",
    re.IGNORECASE,
)
_IN_PLACE = re.compile(r"\bin[- ]place\b", re.IGNORECASE)

__all__ = [
    "ArgumentPolicy",
    "Contract",
    "argument_policy",
    "check_precondition_source",
    "holds",
    "infer",
    "repair",
    "stated_policy",
    "value_holds",
    "written",
]


def stated_policy(prompt: str) -> ArgumentPolicy | None:
    """The argument policy a task statement states, if any: ``frozen`` for "don't
    change the given array", ``output`` for "in place"."""
    if _FROZEN.search(prompt):
        return "frozen"
    if _IN_PLACE.search(prompt):
        return "output"
    return None


def argument_policy(task: CodeTask, test_calls: Sequence[tuple[Any, Any]] = ()) -> ArgumentPolicy:
    """The policy that grades ``task``'s arguments after a call.

    ``test_calls``: ``(encoded input, reference record)`` for the tests' own
    calls. An explicit ``task.argument_policy`` wins; then what the prompt
    states; then a reference that returns None on every test call while
    changing an argument is an in-place task (``output``); otherwise ``free``.
    """
    if task.argument_policy != "auto":
        return task.argument_policy
    stated = stated_policy(task.prompt)
    if stated is not None:
        return stated
    answered = [(inp, rec) for inp, rec in test_calls if "ok" in rec.get("r", {})]
    mutates = any(not codec.unchanged(rec.get("post", []), inp) for inp, rec in answered)
    if answered and mutates and all(rec["r"]["ok"] is None for _, rec in answered):
        return "output"
    return "free"


def check_precondition_source(source: str, params: Sequence[str]) -> str | None:
    """Why a written precondition cannot be used (it does not parse, or as a function
    it is not named ``precondition``); None when it looks usable. Nothing executes."""
    text = source.strip()
    if not text:
        return None
    try:
        pycode.parse(text, mode="eval")
        return None
    except SyntaxError:
        pass
    try:
        tree = pycode.parse(text)
    except SyntaxError as exc:
        return f"the precondition does not parse: {exc.msg} (line {exc.lineno})"
    if find_entry_point(text, "precondition", tree=tree).kind != "def":
        return (
            "the precondition must be one boolean expression over "
            f"{', '.join(params) or 'the parameters'} or define precondition(...)"
        )
    return None
