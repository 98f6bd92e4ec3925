"""Trusted run: the task's tests on the reference, then input generation (in the sandbox).

No candidate is present in this run. The reference is ``solution.py``; its
entry point is wrapped so every top-level call the tests make is recorded
(arguments encoded before the call). Then inputs are generated from the specs,
refined by those recorded arguments (``_sipdo_gen``) and derived from them
(``_sipdo_contract.variants``), kept only when the task's input contract
admits them (written, or inferred from the tests' arguments), and the
reference is called on every input exactly as a candidate will be
(``_sipdo_call.call_one``). A generated input on which the reference raises or
times out is outside the task's domain: it is dropped, never compared. After
``full_timeouts`` such timeouts the remaining generated inputs get a shorter
budget, ``max(short_budget, 20 x the slowest call answered so far)``: a
reference that loops on part of the generated inputs (Newton's method on a
polynomial without a real root) cost two HumanEval rows 42 of the 49 s of a
verification, one whole budget per input. A generated input at least as large
as one that timed out, once a larger one timed out too (``Growth``), is not called
at all. Test
modules that use nothing of pytest run without it (``_sipdo_plain``).
Records: ``{"test", "o", "msg"}`` per test, ``{"exit", "runner"}``, ``{"contract"}``,
``{"g", "in", "r", "post", "dt"}`` per kept input, ``{"dropped"}``, ``{"done"}``.
"""

from __future__ import annotations

import random
import signal
import sys
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

if TYPE_CHECKING:
    from sipdo.verifiers.harness import call_driver as calls
    from sipdo.verifiers.harness import codec, gen, plain
    from sipdo.verifiers.harness import contract as contracts
else:
    import _sipdo_call as calls
    import _sipdo_codec as codec
    import _sipdo_contract as contracts
    import _sipdo_gen as gen
    import _sipdo_plain as plain

_VARIANTS = 60


class Recorder(calls.Recording):
    """Records the reference's top-level calls and the tests' outcomes."""

    def __init__(self, impl: Any, emit: Any, budget: float) -> None:
        super().__init__(impl, budget)
        self.emit = emit

    def pytest_runtest_setup(self, item: Any) -> None:
        random.seed(0)

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or report.failed or report.skipped:
            o, msg = codec.outcome_of([report])
            self.emit({"test": report.nodeid, "when": report.when, "o": o, "msg": msg})

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.emit(
                {
                    "test": report.nodeid or "<collection>",
                    "when": "collect",
                    "o": "failed",
                    "msg": str(report.longrepr)[-400:],
                }
            )


def observed_specs(request: dict[str, Any], inputs: list[dict[str, Any]]) -> list[gen.Spec]:
    """Annotated specs refined by the argument values the tests passed."""
    params: list[str] = request["params"]
    specs: list[gen.Spec] = []
    for i, name in enumerate(params):
        seen = [codec.decode(c["args"][i]) for c in inputs if len(c["args"]) > i]
        seen += [codec.decode(c["kwargs"][name]) for c in inputs if name in c["kwargs"]]
        specs.append(gen.merge(request["specs"][i], gen.infer(seen)))
    return specs


def generated(
    request: dict[str, Any], specs: list[gen.Spec], calls: list[list[Any]]
) -> tuple[list[Any], list[Any]]:
    """Standard and extended argument lists: from the task's strategy or the specs, plus
    variants of the tests' own calls (``calls``)."""
    n_std, n_ext = request["n_standard"], request["n_extended"]
    source = request.get("strategy_source")
    if source:
        namespace: dict[str, Any] = {"st": st}
        exec(compile(source, "<task strategy>", "exec"), namespace)
        strat = namespace["strategy"]
        std, ext = gen.draw(strat, n_std, 1), gen.draw(strat, n_ext, 2)
    else:
        whole = st.tuples(*(gen.strategy(s) for s in specs))
        wide = st.tuples(*(gen.strategy(s, wide=True) for s in specs))
        # n_standard = 0 is the tests alone: no edge cases either.
        std = (gen.edge_inputs(specs) if n_std else []) + gen.draw(whole, n_std, 1)
        ext = gen.draw(wide, n_ext, 2)
    std += contracts.variants(calls, min(_VARIANTS, n_std), 1)
    ext += contracts.variants(calls, min(_VARIANTS, n_ext), 2)
    as_args = (
        [list(x) if isinstance(x, tuple | list) else [x] for x in std],
        [list(x) if isinstance(x, tuple | list) else [x] for x in ext],
    )
    return as_args


def positional(request: dict[str, Any], item: dict[str, Any]) -> list[Any]:
    """A recorded call's arguments in parameter order (keyword arguments placed)."""
    args = [codec.decode(a) for a in item["args"]]
    for name in request["params"][len(args) :]:
        if name not in item["kwargs"]:
            break
        args.append(codec.decode(item["kwargs"][name]))
    return args


class Domain:
    """The task's input contract as a check on argument lists (written or inferred)."""

    def __init__(self, request: dict[str, Any], calls: list[list[Any]]) -> None:
        self.source = request.get("precondition")
        self.params: list[str] = request["params"]
        self.error = ""
        self.contract: dict[str, Any] = {}
        self.pred: Any = None
        if self.source:
            try:
                self.pred = contracts.written(self.source, self.params)
            except Exception as exc:  # the task's own precondition is broken
                self.error = f"{type(exc).__name__}: {exc}"[:300]
        else:
            self.contract = contracts.infer(calls, len(self.params))

    def fit(self, args: list[Any]) -> list[Any]:
        return args if self.source else contracts.repair(self.contract, args)

    def admits(self, args: list[Any]) -> tuple[bool, str]:
        """Whether ``args`` are inside the domain, and why not if the check failed."""
        if self.error:
            return False, self.error
        if not self.source:
            return contracts.holds(self.contract, args), ""
        budget = 1.0
        signal.signal(signal.SIGALRM, calls.alarm)
        try:
            signal.setitimer(signal.ITIMER_REAL, budget)
            try:
                copies = codec.decode(codec.encode(args))
                return bool(self.pred(*copies)), ""
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except calls.CallTimeout:
            return False, "the precondition timed out"
        except Exception as exc:  # a predicate that raises does not admit the input
            return False, f"the precondition raised {type(exc).__name__}: {exc}"[:200]


def run_tests(request: dict[str, Any], recorder: Recorder) -> tuple[int, str]:
    """The task's tests on the recorded reference: pytest's exit code, and which runner ran
    them (``plain`` for a module that uses nothing of pytest, else ``pytest``)."""
    tests_file = request["tests_file"]
    with open(tests_file, encoding="utf-8") as handle:
        source = handle.read()
    if plain.is_plain(source):

        def report(test: str, when: str, outcome: str, msg: str) -> None:
            recorder.emit({"test": test, "when": when, "o": outcome, "msg": msg})

        return plain.run(tests_file, lambda: recorder.pytest_runtest_setup(None), report), "plain"
    import pytest

    args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", tests_file]
    return int(pytest.main(args, plugins=[recorder])), "pytest"


SKIPPED = "timeout (skipped: larger than an input that timed out)"
_SIZED = (str, bytes, list, tuple, dict, set, frozenset)


def _covers(big: list[Any], small: list[Any]) -> bool:
    """Every argument of ``big`` is at least as large as the same argument of ``small``:
    numbers of the same sign by magnitude, strings and containers of one type by length,
    anything else equal."""
    if len(big) != len(small):
        return False
    try:
        for x, y in zip(big, small, strict=True):
            if type(x) in (int, float) and type(y) in (int, float):
                if (x < 0) != (y < 0) or abs(x) < abs(y):
                    return False
            elif type(x) in _SIZED and type(x) is type(y):
                if len(x) < len(y):
                    return False
            elif type(x) is not type(y) or x != y:
                return False
    except Exception:  # values that do not compare: not comparable
        return False
    return True


class Growth:
    """Inputs past a *growing* run of timeouts are not called: once the reference ran out of
    time on an input and then on a larger one, with nothing at least as large as the first
    answered, every input at least as large as the first is skipped. A reference that is slow
    in the size of its input (exponential recursion on ``n``) would run out on each of them,
    one whole budget apiece (HumanEval/63 spent 52 s of a task check so). One timeout alone
    proves nothing (a reference that loops on odd ``n`` answers the next even one), and an
    answered input as large clears it. Only generated inputs are skipped; only coverage is
    lost, never a verdict changed."""

    def __init__(self) -> None:
        self.slow: list[list[Any]] = []  # timed out, nothing answered as large (yet)
        self.growing: list[list[Any]] = []  # of those, the ones a larger input also timed out on
        self.done: list[list[Any]] = []

    def answered(self, args: list[Any]) -> None:
        self.done.append(args)
        self.slow = [t for t in self.slow if not _covers(args, t)]

    def timed_out(self, args: list[Any]) -> None:
        if any(_covers(a, args) for a in self.done):
            return
        self.growing += [t for t in self.slow if t != args and _covers(args, t)]
        self.slow.append(args)

    def beyond_timeout(self, args: list[Any]) -> bool:
        return any(_covers(args, t) for t in self.growing)


def smallest_first(xs: list[list[Any]]) -> list[dict[str, Any]]:
    """The calls ``xs`` encoded, smallest first: by encoded size, then by each argument's
    magnitude (a number's absolute value, a sized value's length), so ``n = 30`` comes
    before ``n = 45`` though both encode as large (see ``Growth``)."""

    def magnitude(a: Any) -> float:
        if type(a) in (int, float):
            return abs(a) if a == a else 0.0  # NaN sorts as 0
        return len(a) if type(a) in _SIZED else 0.0

    items = [({"args": [codec.encode(a) for a in args], "kwargs": {}}, args) for args in xs]
    items.sort(key=lambda pair: (codec.size(pair[0]), [magnitude(a) for a in pair[1]]))
    return [item for item, _ in items]


def main() -> None:
    request, emit = codec.boot()
    import solution  # type: ignore[import-not-found]

    random.seed(0)
    entry = request["entry"]
    impl = getattr(solution, entry)
    recorder = Recorder(impl, emit, request["call_budget"])
    setattr(solution, entry, recorder)
    code, runner = run_tests(request, recorder)
    setattr(solution, entry, impl)
    emit({"exit": code, "unencodable_calls": recorder.unencodable, "runner": runner})
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    specs = observed_specs(request, recorder.inputs)
    test_calls = [positional(request, item) for item in recorder.inputs]
    domain = Domain(request, test_calls)
    outside = []
    for item, args in zip(recorder.inputs, test_calls, strict=True):
        ok, why = domain.admits(args) if len(args) == len(request["params"]) else (True, "")
        if not ok:
            outside.append({"in": item, "why": why})
    emit(
        {
            "contract": {
                "kind": "written" if domain.source else "inferred",
                "inferred": domain.contract,
                "error": domain.error,
                "outside_tests": outside[:20],
            }
        }
    )
    std, ext = generated(request, specs, test_calls)
    seen: set[str] = set()
    dropped: dict[str, int] = {}
    budget, timeouts, slowest = request["call_budget"], 0, 0.0
    growth = Growth()
    groups = [("test", recorder.inputs)]
    groups += [(g, smallest_first(xs)) for g, xs in (("std", std), ("ext", ext))]
    for group, items in groups:
        for item in items:
            if group != "test":
                try:
                    args = domain.fit([codec.decode(a) for a in item["args"]])
                    item = {"args": [codec.encode(a) for a in args], "kwargs": {}}
                except codec.Unencodable:
                    continue
            k = codec.key(item)
            if k in seen:
                continue
            seen.add(k)
            if group != "test" and not domain.admits(args)[0]:
                dropped["outside contract"] = dropped.get("outside contract", 0) + 1
                continue
            if group != "test" and growth.beyond_timeout(args):
                dropped[SKIPPED] = dropped.get(SKIPPED, 0) + 1
                continue
            shortened = group != "test" and budget < request["call_budget"]
            record = calls.call_one(impl, item, budget if shortened else request["call_budget"])
            why = "timeout" if "timeout" in record["r"] else record["r"].get("raise")
            if not why:
                slowest = max(slowest, record["dt"])
                growth.answered(args if group != "test" else positional(request, item))
            elif why == "timeout" and group != "test":
                growth.timed_out(args)
                timeouts += 1
                if shortened:
                    why = "timeout (shortened budget)"
                elif timeouts >= request.get("full_timeouts", 1):
                    budget = min(budget, max(request.get("short_budget", 0.25), 20 * slowest))
            if group != "test" and why:
                # Outside the task's domain: the reference itself does not answer it.
                dropped[why] = dropped.get(why, 0) + 1
                continue
            emit({"g": group, "in": item, **record})
    emit({"dropped": dropped, "specs": specs})
    emit({"done": True})


if __name__ == "__main__":
    main()
