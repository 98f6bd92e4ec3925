"""Shrinking a failing input: one-step simplifications of encoded data, and the shrink flow.

``simpler(inp)`` lists inputs one step simpler than ``inp`` (an element
removed, a number moved towards zero, a string shortened), all strictly
smaller by ``codec.size``. ``shrink_flow`` greedily follows the smallest
simpler input on which the candidate still disagrees with the reference,
checking both in separate runs (the reference never shares a run with the
candidate). Inputs on which the reference raises, while it did not on the
original, are skipped: they are likely outside the task's domain; so are
inputs the task's inferred input contract does not admit (a task with a
written contract is not shrunk: its predicate runs only in the sandbox).
"""

from __future__ import annotations

from typing import Any

from sipdo.verifiers.candidate import call_request, candidate_request, read_calls
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.domain import Envelope, excused
from sipdo.verifiers.harness import codec
from sipdo.verifiers.harness import contract as contracts
from sipdo.verifiers.reference import Case, ReferenceRun
from sipdo.verifiers.runs import Flow, parse
from sipdo.verifiers.types import CodeTask

_MAX_CANDIDATES = 40


def _numbers(value: int | float) -> list[Any]:
    out: list[int | float] = [0, value // 2, value - 1 if value > 0 else value + 1, -value]
    if isinstance(value, float):
        out = [0.0, float(round(value)), value / 2, -value]
    return [v for v in out if abs(v) < abs(value) or (v == -value and value < 0)]


def _simpler(data: Any, depth: int = 0) -> list[Any]:
    """One-step simplifications of one encoded value."""
    if depth > 3:
        return []
    if type(data) is int:
        return [v for v in _numbers(data) if type(v) is int]
    if isinstance(data, str):
        if not data:
            return []
        return list(dict.fromkeys(["", data[: len(data) // 2], data[1:], data[:-1]]))
    if isinstance(data, list):
        out: list[Any] = [[]] if data else []
        if len(data) > 2:
            out.append(data[: len(data) // 2])
        out += [data[:i] + data[i + 1 :] for i in range(min(len(data), 12))]
        for i, item in enumerate(data[:6]):
            out += [[*data[:i], s, *data[i + 1 :]] for s in _simpler(item, depth + 1)[:3]]
        return out
    if isinstance(data, dict) and len(data) == 1:
        (tag, val), *_ = data.items()
        if tag == "i":
            return [0, int(val, 16) // 2]
        if tag == "f":
            return [{"f": float.hex(v)} for v in _numbers(float.fromhex(val))]
        if tag in ("s", "fs", "t"):
            items = _simpler(val, depth)
            return [{tag: v} for v in items if tag != "t" or len(v) == len(val)]
        if tag == "d":
            return [{"d": val[:i] + val[i + 1 :]} for i in range(min(len(val), 8))]
    return []


def simpler(inp: dict[str, Any]) -> list[dict[str, Any]]:
    """Inputs one step simpler than ``inp``, each strictly smaller, without duplicates."""
    args, kwargs = inp.get("args", []), inp.get("kwargs", {})
    found: dict[str, dict[str, Any]] = {}
    for i, arg in enumerate(args):
        for s in _simpler(arg):
            found.setdefault(
                codec.key(s), {"args": [*args[:i], s, *args[i + 1 :]], "kwargs": kwargs}
            )
    for name, value in kwargs.items():
        for s in _simpler(value):
            found.setdefault(codec.key(s), {"args": args, "kwargs": {**kwargs, name: s}})
    limit = codec.size(inp)
    smaller = [c for c in found.values() if codec.size(c) < limit]
    return sorted(smaller, key=codec.size)[:_MAX_CANDIDATES]


def shrink_flow(
    task: CodeTask,
    candidate: str,
    start: Case,
    answer: dict[str, Any] | None,
    config: VerifierConfig,
    rounds: int = 3,
    *,
    ref: ReferenceRun | None = None,
    envelope: Envelope | None = None,
) -> Flow[tuple[Case, dict[str, Any] | None]]:
    """The smallest failing input reachable from ``start`` and the candidate's answer to it
    (inside the input contract and graded by the argument policy of ``ref``; an input the
    candidate declines beyond ``envelope`` is not failing: ``sipdo.verifiers.domain``)."""
    best, best_answer = start, answer
    reference_raised = "raise" in start.expected.get("r", {})
    policy = ref.policy if ref is not None else "output"
    contract = ref.contract if ref is not None else {}
    if contract.get("kind") == "written":
        return best, best_answer
    inferred = contract.get("inferred") or {}
    for _ in range(rounds):
        cases = [Case("shrink", inp, {}) for inp in simpler(best.inp) if _admitted(inferred, inp)]
        if not cases:
            break
        ref_req = call_request(
            {"solution.py": task.reference_solution}, task.entry_point, cases, config
        )
        cand_req = candidate_request(candidate, task.entry_point, cases, config)
        ref_res, cand_res = yield [ref_req, cand_req]
        expected = read_calls(ref_req, parse(ref_req, ref_res), cases).results[0]
        cand_run = read_calls(cand_req, parse(cand_req, cand_res), cases)
        got = {} if cand_run.tampered else cand_run.results[0]
        failing = []
        for case in cases:
            want = expected.get(case.key)
            if want is None or (
                "ok" not in want["r"] and not ("raise" in want["r"] and reference_raised)
            ):
                continue
            if envelope is not None and excused(got.get(case.key), "shrink", case.inp, envelope):
                continue
            if got.get(case.key) is None or not codec.same_result(
                got[case.key], want, policy, case.inp
            ):
                failing.append(Case("shrink", case.inp, want))
        if not failing:
            break
        best = failing[0]  # cases are sorted by size
        best_answer = got.get(best.key)
    return best, best_answer


def _admitted(inferred: contracts.Contract, inp: dict[str, Any]) -> bool:
    if not inferred.get("params") or inp.get("kwargs"):
        return True
    return contracts.holds(inferred, [codec.decode(a) for a in inp.get("args", [])])
