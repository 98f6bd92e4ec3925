# ruff: noqa: E501 (the task table reads best one case a line)
"""The broken-task corpus of ``verify_tasks_mode.py``: sound tasks and deliberately broken twins.

Ten small tasks written for this corpus (none from HumanEval or MBPP), each
shipped sound (the control) and broken five ways:

- ``wrong_reference``: a reference with a bug that one of the tests catches;
- ``asserts_nothing``: every ``assert`` of the tests turned into a bare
  expression (the tests call the function and check nothing);
- ``passes_anything``: every assertion replaced by ``isinstance(<call>,
  object)`` (true for any return value);
- ``order_dependent``: the tests share module state: the first test records
  the results and only the last one asserts on them, so they pass only when
  run in file order and all together;
- ``time_dependent``: each assertion runs only when the clock's nanoseconds
  are even (the tests check a random half of the cases on each run).

    python benchmarks/broken_tasks.py   # rewrites benchmarks/data/broken_tasks.jsonl
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("data") / "broken_tasks.jsonl"

# (entry point, signature + docstring, reference body, a buggy body, [(args, expected)])
BASES: list[tuple[str, str, str, str, list[tuple[str, str]]]] = [
    ("clamp_sum", "def clamp_sum(xs: list[int], lo: int, hi: int) -> int:\n    \"\"\"Sum of xs, each clamped into [lo, hi].\"\"\"\n",
     "    return sum(min(max(x, lo), hi) for x in xs)\n",
     "    return sum(min(max(x, lo), hi - 1) for x in xs)\n",
     [("[3, 4], 0, 10", "7"), ("[-5, 5, 50], 0, 10", "15"), ("[0, 10], 0, 10", "10"), ("[], 1, 2", "0")]),
    ("second_largest", "def second_largest(xs: list[int]) -> int | None:\n    \"\"\"The second largest distinct value of xs, or None if there is none.\"\"\"\n",
     "    values = sorted(set(xs))\n    return values[-2] if len(values) >= 2 else None\n",
     "    values = sorted(xs)\n    return values[-2] if len(values) >= 2 else None\n",
     [("[1, 5, 3]", "3"), ("[4, 4, 2]", "2"), ("[7]", "None"), ("[]", "None"), ("[-1, -2]", "-2")]),
    ("rotate", "def rotate(xs: list[int], k: int) -> list[int]:\n    \"\"\"xs rotated right by k places (k may exceed len(xs) or be negative).\"\"\"\n",
     "    if not xs:\n        return []\n    k %= len(xs)\n    return xs[-k:] + xs[:-k] if k else list(xs)\n",
     "    if not xs:\n        return []\n    k %= len(xs)\n    return xs[k:] + xs[:k]\n",
     [("[1, 2, 3, 4], 1", "[4, 1, 2, 3]"), ("[1, 2, 3], 3", "[1, 2, 3]"), ("[1, 2, 3], -1", "[2, 3, 1]"), ("[], 5", "[]")]),
    ("is_balanced", "def is_balanced(s: str) -> bool:\n    \"\"\"True if the brackets ()[]{} in s are balanced; other characters are ignored.\"\"\"\n",
     "    pairs = {')': '(', ']': '[', '}': '{'}\n    stack = []\n    for c in s:\n        if c in '([{':\n            stack.append(c)\n        elif c in pairs:\n            if not stack or stack.pop() != pairs[c]:\n                return False\n    return not stack\n",
     "    pairs = {')': '(', ']': '[', '}': '{'}\n    stack = []\n    for c in s:\n        if c in '([{':\n            stack.append(c)\n        elif c in pairs:\n            if not stack or stack.pop() != pairs[c]:\n                return False\n    return True\n",
     [("'([]{})'", "True"), ("'(]'", "False"), ("'(('", "False"), ("'a(b)c'", "True"), ("''", "True")]),
    ("digit_sum", "def digit_sum(n: int) -> int:\n    \"\"\"Sum of the decimal digits of n (the sign is ignored).\"\"\"\n",
     "    return sum(int(d) for d in str(abs(n)))\n",
     "    return sum(int(d) for d in str(n) if d.isdigit()) + (1 if n < 0 else 0)\n",
     [("0", "0"), ("123", "6"), ("-45", "9"), ("1000", "1")]),
    ("caesar", "def caesar(s: str, k: int) -> str:\n    \"\"\"Shift each lower-case letter of s by k places in the alphabet; keep other characters.\"\"\"\n",
     "    return ''.join(chr((ord(c) - 97 + k) % 26 + 97) if 'a' <= c <= 'z' else c for c in s)\n",
     "    return ''.join(chr((ord(c) - 97 + k) % 25 + 97) if 'a' <= c <= 'z' else c for c in s)\n",
     [("'abc', 1", "'bcd'"), ("'xyz', 3", "'abc'"), ("'Hi!', 2", "'Hk!'"), ("'', 4", "''")]),
    ("count_words", "def count_words(s: str) -> dict[str, int]:\n    \"\"\"How often each whitespace-separated word occurs in s, case-insensitively (keys lower-case).\"\"\"\n",
     "    counts: dict[str, int] = {}\n    for w in s.lower().split():\n        counts[w] = counts.get(w, 0) + 1\n    return counts\n",
     "    counts: dict[str, int] = {}\n    for w in s.split():\n        counts[w] = counts.get(w, 0) + 1\n    return counts\n",
     [("'a b a'", "{'a': 2, 'b': 1}"), ("'The the'", "{'the': 2}"), ("''", "{}"), ("'  x  '", "{'x': 1}")]),
    ("merge_intervals", "def merge_intervals(iv: list[tuple[int, int]]) -> list[tuple[int, int]]:\n    \"\"\"Merge overlapping or touching closed intervals; the result is sorted.\"\"\"\n",
     "    out: list[tuple[int, int]] = []\n    for a, b in sorted(iv):\n        if out and a <= out[-1][1]:\n            out[-1] = (out[-1][0], max(out[-1][1], b))\n        else:\n            out.append((a, b))\n    return out\n",
     "    out: list[tuple[int, int]] = []\n    for a, b in sorted(iv):\n        if out and a < out[-1][1]:\n            out[-1] = (out[-1][0], max(out[-1][1], b))\n        else:\n            out.append((a, b))\n    return out\n",
     [("[(1, 3), (2, 4)]", "[(1, 4)]"), ("[(5, 6), (1, 2)]", "[(1, 2), (5, 6)]"), ("[(1, 2), (2, 3)]", "[(1, 3)]"), ("[]", "[]")]),
    ("median", "def median(xs: list[int]) -> float:\n    \"\"\"The median of a non-empty list.\"\"\"\n",
     "    s = sorted(xs)\n    n = len(s)\n    return float(s[n // 2]) if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2\n",
     "    s = sorted(xs)\n    n = len(s)\n    return float(s[n // 2])\n",
     [("[3, 1, 2]", "2.0"), ("[4, 1, 3, 2]", "2.5"), ("[7]", "7.0"), ("[-1, -3]", "-2.0")]),
    ("run_lengths", "def run_lengths(s: str) -> list[int]:\n    \"\"\"Lengths of the runs of equal characters in s, in order.\"\"\"\n",
     "    out: list[int] = []\n    prev = None\n    for c in s:\n        if c == prev:\n            out[-1] += 1\n        else:\n            out.append(1)\n        prev = c\n    return out\n",
     "    out: list[int] = []\n    prev = ''\n    for c in s:\n        if c == prev:\n            out[-1] += 1\n        else:\n            out.append(1)\n        prev = c\n    return out[:-1] if len(out) > 2 else out\n",
     [("'aab'", "[2, 1]"), ("''", "[]"), ("'abcc'", "[1, 1, 2]"), ("'zzz'", "[3]")]),
]  # fmt: skip


def _tests(entry: str, cases: list[tuple[str, str]]) -> str:
    body = "\n\n".join(
        f"def test_{i}():\n    assert {entry}({args}) == {want}\n"
        for i, (args, want) in enumerate(cases)
    )
    return f"from solution import {entry}\n\n{body}"


class _Weaken(ast.NodeTransformer):
    def __init__(self, how: str) -> None:
        self.how = how

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        if self.how == "asserts_nothing":
            return ast.Expr(node.test)
        if self.how == "passes_anything":
            call = node.test.left if isinstance(node.test, ast.Compare) else node.test
            anything = ast.parse(f"isinstance({ast.unparse(call)}, object)", mode="eval").body
            return ast.Assert(test=anything, msg=None)
        # time_dependent: the assertion runs only on an even clock reading
        cond = ast.parse("__import__('time').time_ns() // 1000 % 2 == 0", mode="eval").body
        return ast.If(test=cond, body=[node], orelse=[])


def _weakened(tests: str, how: str) -> str:
    tree = _Weaken(how).visit(ast.parse(tests))
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def _order_dependent(entry: str, cases: list[tuple[str, str]]) -> str:
    first = "\n".join(f"    _RESULTS.append({entry}({args}))" for args, _ in cases)
    wants = ", ".join(want for _, want in cases)
    return (
        f"from solution import {entry}\n\n_RESULTS = []\n\n"
        f"def test_record():\n{first}\n\n"
        f"def test_check_recorded():\n    assert _RESULTS == [{wants}]\n"
    )


def corpus() -> list[dict[str, Any]]:
    rows = []
    for entry, prompt, body, buggy, cases in BASES:
        tests = _tests(entry, cases)
        base = {"prompt": prompt, "entry_point": entry, "reference_solution": prompt + body,
                "tests": tests}  # fmt: skip
        variants = {
            "sound": base,
            "wrong_reference": {**base, "reference_solution": prompt + buggy},
            "asserts_nothing": {**base, "tests": _weakened(tests, "asserts_nothing")},
            "passes_anything": {**base, "tests": _weakened(tests, "passes_anything")},
            "order_dependent": {**base, "tests": _order_dependent(entry, cases)},
            "time_dependent": {**base, "tests": _weakened(tests, "time_dependent")},
        }
        for kind, task in variants.items():
            rows.append({"task_id": f"{entry}/{kind}", "breakage": kind, **task})
    return rows


def main() -> int:
    OUT.parent.mkdir(exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        for row in corpus():
            f.write(json.dumps(row) + "\n")
    print(f"wrote {OUT} ({len(BASES)} tasks x 6 variants)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
