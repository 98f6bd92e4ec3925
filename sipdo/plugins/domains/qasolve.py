"""Programmatic solvers of the qa domain's question families, run in the sandbox.

Self-contained (standard library only): the verifier copies this file into the
sandbox, where the generator's spec (untrusted: an expression may be built to
exhaust memory) is read and the answer re-derived. Each family also checks
that its spec is the question's: the names or numbers it uses occur in the
question text, so a spec cannot quietly solve another problem.

- ``ordering``: ``{"relations": [[a, b], ...], "ask": "max" | "min"}`` where each
  pair says a ranks above b (older, taller, ...); the answer is the one
  element the relations put above (``max``) or below (``min``) every other;
  contradictory or underdetermined relations are refused with the reason.
- ``arithmetic``: ``{"expression": "..."}`` of numbers, ``+ - * / // % **`` and
  brackets; every number in it occurs in the question (or is a common
  constant such as 0, 100 or 60).
- ``date``: ``{"start": "YYYY-MM-DD"}`` with ``"add_days": n`` (the date n days
  later), ``"end": "YYYY-MM-DD"`` (days between) or ``"ask": "weekday"``.

Run as a script it reads ``{"nonce", "family", "spec", "question"}`` on stdin
and prints one nonce-framed JSON line ``{"ok", "answer" | "reason"}``.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
import sys
import threading
from collections.abc import Callable
from typing import Any

_AST_LOCK = threading.Lock()

FAMILIES = ("ordering", "arithmetic", "date")
CONSTANTS = {0, 1, 2, 7, 10, 12, 24, 60, 100, 365, 1000}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


class Unsound(ValueError):
    """The spec does not determine one answer, or is not the question's."""


def derive(family: str, spec: dict[str, Any], question: str) -> str:
    """The one answer ``spec`` determines; ``Unsound`` says why there is none."""
    if family == "ordering":
        return _ordering(spec, question)
    if family == "arithmetic":
        return _arithmetic(spec, question)
    if family == "date":
        return _date(spec, question)
    raise Unsound(f"no solver for the family {family!r}")


def _ordering(spec: dict[str, Any], question: str) -> str:
    pairs = spec.get("relations")
    ask = spec.get("ask")
    if ask not in ("max", "min"):
        raise Unsound("ordering: 'ask' must be 'max' or 'min'")
    if not isinstance(pairs, list) or not pairs:
        raise Unsound("ordering: 'relations' must be a non-empty list of [above, below] pairs")
    above: dict[str, set[str]] = {}
    for pair in pairs:
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
        ):
            raise Unsound(f"ordering: {pair!r} is not an [above, below] pair of names")
        a, b = (x.strip() for x in pair)
        if a == b:
            raise Unsound(f"ordering: {a} cannot rank above itself")
        above.setdefault(a, set()).add(b)
        above.setdefault(b, set())
    missing = [n for n in above if not re.search(rf"\b{re.escape(n)}\b", question, re.IGNORECASE)]
    if missing:
        raise Unsound(f"ordering: the question does not mention {', '.join(sorted(missing))}")
    below = {n: _reach(above, n) for n in above}
    cycle = sorted(n for n in above if n in below[n])
    if cycle:
        raise Unsound(f"contradictory: the relations rank {', '.join(cycle)} above themselves")
    names = set(above)
    if ask == "max":
        winners = [n for n in names if below[n] == names - {n}]
    else:
        winners = [n for n in names if all(n in below[m] for m in names - {n})]
    if len(winners) != 1:
        raise Unsound(
            f"underdetermined: the relations do not fix the {ask} "
            f"(they order {len(names)} names only partly)"
        )
    return winners[0]


def _reach(above: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(above[start])
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(above[n])
    return seen


def _arithmetic(spec: dict[str, Any], question: str) -> str:
    expression = spec.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        raise Unsound("arithmetic: 'expression' must be a non-empty string")
    if len(expression) > 300:
        raise Unsound("arithmetic: the expression is too long")
    try:
        with _AST_LOCK:  # the host's threads share ast's state (see sipdo.pycode)
            tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise Unsound(f"arithmetic: {expression!r} does not parse") from None
    stated = {_num(m) for m in _NUMBER.findall(question.replace(",", ""))}
    used = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    foreign = sorted({_fmt(v) for v in used if _num(_fmt(v)) not in stated | CONSTANTS})
    if foreign:
        raise Unsound(f"arithmetic: the expression uses {', '.join(foreign)}, not in the question")
    return _fmt(_eval(tree.body))


def _num(text: str) -> float:
    return float(text)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unsound(f"arithmetic: {value!r} is not a number")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise Unsound("arithmetic: the result is not finite")
        if value.is_integer():
            return str(int(value))
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return str(value)


_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
}


def _eval(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            if abs(right) > 12 or abs(left) > 1e6:
                raise Unsound("arithmetic: the power is too large")
            return left**right
        op = _OPS.get(type(node.op))
        if op is None:
            raise Unsound(f"arithmetic: operator {type(node.op).__name__} is not allowed")
        try:
            return op(left, right)
        except ZeroDivisionError:
            raise Unsound("arithmetic: division by zero") from None
    raise Unsound(f"arithmetic: {type(node).__name__} is not allowed in an expression")


def _day(spec: dict[str, Any], key: str, question: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(str(spec.get(key)))
    except ValueError:
        raise Unsound(f"date: {key!r} must be a YYYY-MM-DD date") from None
    if str(day.year) not in question:
        raise Unsound(f"date: the question does not mention the year {day.year}")
    return day


def _date(spec: dict[str, Any], question: str) -> str:
    start = _day(spec, "start", question)
    if "add_days" in spec:
        days = spec["add_days"]
        if type(days) is not int or abs(days) > 100_000:
            raise Unsound("date: 'add_days' must be a whole number of days")
        if str(abs(days)) not in question:
            raise Unsound(f"date: the question does not mention {abs(days)} days")
        return (start + dt.timedelta(days=days)).isoformat()
    if "end" in spec:
        return str((_day(spec, "end", question) - start).days)
    if spec.get("ask") == "weekday":
        return start.strftime("%A")
    raise Unsound("date: give 'add_days', 'end' or 'ask': 'weekday'")


def main() -> None:
    request = json.loads(sys.stdin.read())
    try:
        out = {
            "ok": True,
            "answer": derive(request["family"], request["spec"], request["question"]),
        }
    except Unsound as exc:
        out = {"ok": False, "reason": str(exc)}
    except (RecursionError, MemoryError, OverflowError) as exc:
        out = {"ok": False, "reason": f"cannot derive: {type(exc).__name__}"}
    sys.stdout.write(f"\n{request['nonce']} {json.dumps(out)}\n")


if __name__ == "__main__":
    main()
