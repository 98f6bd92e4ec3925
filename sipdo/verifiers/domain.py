"""Inputs a candidate declares outside the task: its own validation, beyond the tests' range.

A task's prose often states a precondition that no test shows and no contract
rule can read: "a list of length at least two", "base numbers are less than
10", "1 <= num <= 1000". A correct answer may check it and raise. The
reference, written without the check, answers such inputs anyway (a ``None``,
a digit string in base 14), so comparing the two there fails a correct answer
for something the task never asked. Measured on the learners' stored HumanEval
answers (stop 31): of the 35 distinct answers that passed HumanEval's own tests
and failed full grading, 22 failed on a raised exception, 18 of them raised by
the answer's own check of a stated precondition; with this rule 10 of the 35 pass
(the other validating answers also differ from the reference inside the tests'
range, e.g. on ties, and still fail).

The rule, deliberately narrow:

- only *generated* inputs are excused, never the tests' own calls;
- only when the candidate rejects the input by its own ``raise`` or ``assert``
  statement (the call driver marks such records ``own``; a crash such as an
  ``IndexError`` or ``int("")`` is not a rejection);
- only when the input lies beyond the tests' *envelope*: at some place (an
  argument, or the elements of a container argument) a number smaller or larger,
  or a length shorter or longer, than any the tests pass there, or a kind of
  value the tests never pass there;
- only while the candidate declines at most half of the generated inputs: a
  candidate that answers the tests from a table and raises on everything else
  is compared everywhere;
- only when the task's precondition is inferred: a written one (``CodeTask.precondition``)
  says exactly which inputs the task is defined on, and every generated input
  satisfies it.

The same rule lets a checker's solution decline such inputs in ``verify_task``'s
consensus check: declining them does not show the reference wrong.

Inside the envelope every input is compared as before, so code that gives up
on inputs like the tests' own still fails. Outside it, a candidate may narrow
the domain explicitly; the verdict says how many inputs it declined
(``declared domain`` check). ``VerifierConfig.declared_domain=False`` turns
the rule off.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.harness import codec
from sipdo.verifiers.reference import Case, ReferenceRun

MAX_DECLINED_SHARE = 0.5
_MAX_DEPTH = 3
_SIZED = (str, bytes, bytearray, list, tuple, dict, set, frozenset)

Place = tuple[Any, ...]


def _features(value: Any, place: Place, depth: int = 0) -> Iterator[tuple[Place, str, float]]:
    """(place, measure, amount) for ``value``: numbers by value, sized values by length,
    and the same for the elements (and dict values) of containers."""
    if type(value) in (int, float):
        yield place, "num", value
        return
    if isinstance(value, _SIZED):
        yield place, "len", len(value)
        if depth >= _MAX_DEPTH or isinstance(value, (str, bytes, bytearray)):
            return
        elems = value.values() if isinstance(value, dict) else value
        for e in elems:
            yield from _features(e, (*place, "e"), depth + 1)
        return
    yield place, type(value).__name__, 0


def _call_features(inp: dict[str, Any]) -> list[tuple[Place, str, float]] | None:
    try:
        args = [codec.decode(a) for a in inp.get("args", [])]
        kwargs = {k: codec.decode(v) for k, v in inp.get("kwargs", {}).items()}
    except Exception:  # undecodable data: never excused
        return None
    out = [f for i, a in enumerate(args) for f in _features(a, ("a", i))]
    out += [f for k, v in kwargs.items() for f in _features(v, ("k", k))]
    return out


@dataclass(frozen=True)
class Envelope:
    """Per place and measure, the range the tests' own calls cover."""

    ranges: dict[tuple[Place, str], tuple[float, float]]

    @classmethod
    def of(cls, test_inputs: list[dict[str, Any]]) -> Envelope:
        ranges: dict[tuple[Place, str], tuple[float, float]] = {}
        for inp in test_inputs:
            for place, measure, amount in _call_features(inp) or []:
                low, high = ranges.get((place, measure), (amount, amount))
                ranges[place, measure] = (min(low, amount), max(high, amount))
        return cls(ranges)

    @classmethod
    def for_run(cls, ref: ReferenceRun, config: VerifierConfig) -> Envelope | None:
        """The envelope of ``ref``'s test calls, or None when the rule does not apply (turned
        off, or the task's precondition is written)."""
        if not config.declared_domain or ref.contract.get("kind") == "written":
            return None
        return cls.of([c.inp for c in ref.group("test")])

    def beyond(self, inp: dict[str, Any]) -> bool:
        """Some value of ``inp`` lies outside every range the tests cover at its place."""
        if not self.ranges:
            return False
        features = _call_features(inp)
        if features is None:
            return False
        for place, measure, amount in features:
            span = self.ranges.get((place, measure))
            if span is None or not span[0] <= amount <= span[1]:
                return True
        return False


def declined(answer: dict[str, Any] | None) -> bool:
    """The answer is a rejection by the candidate's own ``raise`` / ``assert``."""
    if answer is None:
        return False
    r = answer.get("r")
    return isinstance(r, dict) and "raise" in r and r.get("own") is True


def excused(answer: dict[str, Any] | None, group: str, inp: dict[str, Any], env: Envelope) -> bool:
    """A generated input the candidate declines, beyond the tests' envelope: not compared."""
    return group != "test" and declined(answer) and env.beyond(inp)


def declined_cases(
    cases: list[Case], answers: dict[str, dict[str, Any]], env: Envelope | None
) -> list[Case]:
    """The generated ``cases`` not compared: declined beyond the envelope, and none when the
    candidate declines more than ``MAX_DECLINED_SHARE`` of the generated inputs (or when
    there is no envelope: the rule does not apply)."""
    if env is None:
        return []
    out = [c for c in cases if excused(answers.get(c.key), c.group, c.inp, env)]
    generated = sum(c.group != "test" for c in cases)
    return out if len(out) <= MAX_DECLINED_SHARE * generated else []
