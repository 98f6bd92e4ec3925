"""Trusted run: the task's tests on the reference, then input generation (in the sandbox).

No candidate is present in this run. The reference is ``solution.py``; its
entry point is wrapped so every top-level call the tests make is recorded
(arguments encoded before the call). Then inputs are generated from the specs,
refined by those recorded arguments (``_sipdo_gen``), and the reference is
called on every input exactly as a candidate will be (``_sipdo_call.call_one``).
Records: ``{"test", "o", "msg"}`` per test, ``{"exit"}``, ``{"g", "in", "r",
"post", "dt"}`` per kept input, ``{"dropped"}``, ``{"done"}``.
"""

from __future__ import annotations

import random
import signal
import sys
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

if TYPE_CHECKING:
    from sipdo.verifiers.harness import call_driver as calls
    from sipdo.verifiers.harness import codec, gen
else:
    import _sipdo_call as calls
    import _sipdo_codec as codec
    import _sipdo_gen as gen

_RESOURCE = ("timeout", "RecursionError", "MemoryError")


class Recorder:
    """Records the reference's top-level calls and the tests' outcomes."""

    def __init__(self, impl: Any, emit: Any, budget: float) -> None:
        self.impl, self.emit, self.budget = impl, emit, budget
        self.depth = 0
        self.inputs: list[dict[str, Any]] = []
        self.unencodable = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.depth:
            return self.impl(*args, **kwargs)
        try:
            item = {
                "args": [codec.encode(a) for a in args],
                "kwargs": {k: codec.encode(v) for k, v in kwargs.items()},
            }
            if codec.opaque_inside(item):
                raise codec.Unencodable("argument of an unsupported type")
            self.inputs.append(item)
        except codec.Unencodable:
            self.unencodable += 1
        self.depth += 1
        signal.signal(signal.SIGALRM, calls.alarm)
        signal.setitimer(signal.ITIMER_REAL, self.budget)
        try:
            return self.impl(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.depth -= 1

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


def generated(request: dict[str, Any], specs: list[gen.Spec]) -> tuple[list[Any], list[Any]]:
    """Standard and extended argument lists, from the task's strategy or the specs."""
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
        std = gen.edge_inputs(specs) + gen.draw(whole, n_std, 1)
        ext = gen.draw(wide, n_ext, 2)
    as_args = (
        [list(x) if isinstance(x, tuple | list) else [x] for x in std],
        [list(x) if isinstance(x, tuple | list) else [x] for x in ext],
    )
    return as_args


def main() -> None:
    request, emit = codec.boot()
    import pytest
    import solution  # type: ignore[import-not-found]

    random.seed(0)
    entry = request["entry"]
    impl = getattr(solution, entry)
    recorder = Recorder(impl, emit, request["call_budget"])
    setattr(solution, entry, recorder)
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", request["tests_file"]]
    code = pytest.main(args, plugins=[recorder])
    setattr(solution, entry, impl)
    emit({"exit": int(code), "unencodable_calls": recorder.unencodable})
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    specs = observed_specs(request, recorder.inputs)
    std, ext = generated(request, specs)
    seen: set[str] = set()
    dropped: dict[str, int] = {}
    groups = [("test", recorder.inputs)]
    groups += [
        (g, [{"args": [codec.encode(a) for a in args], "kwargs": {}} for args in xs])
        for g, xs in (("std", std), ("ext", ext))
    ]
    for group, items in groups:
        for item in items:
            k = codec.key(item)
            if k in seen:
                continue
            seen.add(k)
            record = calls.call_one(impl, item, request["call_budget"])
            why = "timeout" if "timeout" in record["r"] else record["r"].get("raise")
            if group != "test" and why in _RESOURCE:
                dropped[why] = dropped.get(why, 0) + 1
                continue
            emit({"g": group, "in": item, **record})
    emit({"dropped": dropped, "specs": specs})
    emit({"done": True})


if __name__ == "__main__":
    main()
