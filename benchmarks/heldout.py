"""Held-out pass@1 of the local learners on HumanEval, graded two ways, next to published numbers.

Each model answers every problem once, greedily (temperature 0), under sipdo's
default prompt and its own solve path (``CodeDomain.solve_messages`` -> the
model -> ``parse_answer``); every answer is graded with HumanEval's own tests
only ("base", comparable to published pass@1) and with sipdo's full
verification ("full": tests + differential testing against the reference).
Results go to the run store as they come (``sipdo evals list``), so a killed
run resumes, and running the same command again prints the table without
solving anything again.

    python benchmarks/heldout.py --model local:qwen2.5-coder-0.5b
    python benchmarks/heldout.py --model local:qwen2.5-coder-1.5b --limit 40
    python benchmarks/heldout.py --model local:qwen2.5-coder-0.5b \
        --samples-out humaneval-0.5b-samples.jsonl      # per-task answers and both verdicts
    python benchmarks/heldout.py --from-store --model local:qwen2.5-coder-0.5b \
        --model local:qwen2.5-coder-1.5b                # the table from what is stored so far

Published numbers: Qwen2.5-Coder Technical Report (Hui et al., 2024,
arXiv:2409.12186v3), the instruct-model table for the 0.5B-3B models,
HumanEval pass@1: 0.5B-Instruct 61.6, 1.5B-Instruct 70.7 (greedy, bf16
weights, the report's own chat prompt and harness). The models here are the
Q4_K_M GGUF quantizations under sipdo's default system prompt, so the gap
mixes quantization, prompt and answer extraction; base grading is the
comparable column.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from sipdo.cli.run import DEFAULT_PROMPT
from sipdo.evaluation import EvalResult, evaluate_prompt, load_benchmark, summarize
from sipdo.evaluation.plan import usage_of
from sipdo.evaluation.results import SampleRecord
from sipdo.store import RunStore, default_url

# HumanEval pass@1 (%) of the instruct models, Qwen2.5-Coder Technical Report, arXiv:2409.12186.
PUBLISHED: dict[str, dict[str, Any]] = {
    "local:qwen2.5-coder-0.5b": {"model": "Qwen2.5-Coder-0.5B-Instruct", "humaneval": 61.6},
    "local:qwen2.5-coder-1.5b": {"model": "Qwen2.5-Coder-1.5B-Instruct", "humaneval": 70.7},
}
PUBLISHED_SOURCE = (
    "Qwen2.5-Coder Technical Report, Hui et al. 2024, arXiv:2409.12186v3, table of the "
    "0.5B-3B instruct models (HumanEval 61.6 / 70.7; HumanEval+ 57.3 / 66.5), bf16 weights, "
    "the report's own prompt and harness"
)


def _progress(label: str) -> Any:
    started = time.monotonic()

    def show(event: dict[str, Any]) -> None:
        if event["kind"] == "start":
            print(
                f"[{label}] {event['eval_id']}: {event['todo']} to solve, {event['kept']} kept "
                f"from an earlier run; {event['estimate'].describe()}",
                file=sys.stderr,
                flush=True,
            )
            return
        mark = ("B" if event["base_passed"] else "b") + ("F" if event["full_passed"] else "f")
        print(
            f"[{label}] {event['done']}/{event['total']} {event['task_id']} {event['status']} "
            f"{mark} {time.monotonic() - started:.0f}s",
            file=sys.stderr,
            flush=True,
        )

    return show


def row(result: EvalResult, spec: str) -> dict[str, Any]:
    """One table row: the model's base and full pass@1 next to the published figure."""
    n = len(result.tasks)
    base = sum(t.base for t in result.tasks)
    full = sum(t.full for t in result.tasks)
    published = PUBLISHED.get(spec, {})
    return {
        "model": spec,
        "tasks": n,
        "of": result.settings.get("tasks", n),
        "base_passed": base,
        "base_pass@1": round(100 * base / n, 1) if n else None,
        "full_passed": full,
        "full_pass@1": round(100 * full / n, 1) if n else None,
        "base_only": sum(1 for d in result.disagreements if d.base_passed),
        "full_only": sum(1 for d in result.disagreements if d.full_passed),
        "published_pass@1": published.get("humaneval"),
        "eval_id": result.eval_id,
        "status": result.status,
        "model_s_per_task": round(result.usage.model_seconds / n, 1) if n else None,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'model':28} {'tasks':>9} {'base pass@1':>14} {'full pass@1':>14} "
        f"{'base-only':>9} {'published':>9}"
    )
    print(head)
    for r in rows:
        pub = f"{r['published_pass@1']:.1f}" if r["published_pass@1"] is not None else "-"
        print(
            f"{r['model']:28} {str(r['tasks']) + '/' + str(r['of']):>9} "
            f"{r['base_passed']:>4} ({r['base_pass@1']:>5}%) "
            f"{r['full_passed']:>4} ({r['full_pass@1']:>5}%) "
            f"{r['base_only']:>9} {pub:>9}"
        )
    print(f"published: {PUBLISHED_SOURCE}")


def paired(results: dict[str, EvalResult]) -> str:
    """Pass counts of each model on the tasks every model was graded on (partial runs)."""
    common = set.intersection(*({t.task_id for t in r.tasks} for r in results.values()))
    parts = []
    for spec, r in results.items():
        on = [t for t in r.tasks if t.task_id in common]
        parts.append(f"{spec} base {sum(t.base for t in on)} full {sum(t.full for t in on)}")
    return f"on the {len(common)} tasks all were graded on: " + "; ".join(parts)


def write_samples(store: RunStore, result: EvalResult, path: Path) -> int:
    """Per-task answers with both verdicts: {task_id, solution, base_passed, full_passed}."""
    records = sorted(
        store.eval_results(result.eval_id), key=lambda r: int(r.task_id.rsplit("-", 1)[-1])
    )
    with path.open("w", encoding="utf-8") as out:
        for r in records:
            out.write(
                json.dumps(
                    {
                        "task_id": r.task_id.replace("-", "/", 1),
                        "solution": r.answer,
                        "base_passed": r.base_passed,
                        "full_passed": r.full_passed,
                        "status": r.status,
                        "feedback": r.feedback,
                    }
                )
                + "\n"
            )
    return len(records)


def stored_result(store: RunStore, spec: str) -> EvalResult | None:
    """The stored eval of ``spec`` under the default prompt on HumanEval with the most
    graded samples (finished or not), summarized as it stands."""
    found = [
        ev
        for ev in store.list_evals()
        if ev.model == spec
        and ev.prompt == DEFAULT_PROMPT
        and ev.benchmark.startswith("humaneval")
        and ev.config.get("samples_per_task") == 1
    ]
    if not found:
        return None
    ev = max(found, key=lambda e: (e.results, e.created_at))
    records = [SampleRecord.from_stored(r) for r in store.eval_results(ev.eval_id)]
    wall = float(((ev.summary or {}).get("usage") or {}).get("wall_seconds", 0.0))
    return summarize(
        records,
        eval_id=ev.eval_id,
        model=ev.model,
        benchmark=ev.benchmark,
        settings=ev.config,
        ks=(1,),
        usage=usage_of(records, wall),
        status=ev.status,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", help="model spec (repeatable)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--sandbox", default="auto", choices=["auto", "docker", "process"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--db", default=None, help="run store URL (default: sipdo's)")
    parser.add_argument("--samples-out", type=Path, default=None, help="write per-task answers")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    parser.add_argument(
        "--from-store", action="store_true", help="solve nothing: the table from what is stored"
    )
    args = parser.parse_args(argv)
    models = args.model or ["local:qwen2.5-coder-0.5b"]
    tasks = load_benchmark("humaneval", limit=args.limit)
    rows = []
    results: dict[str, EvalResult] = {}
    with RunStore(args.db or default_url()) as store:
        for spec in models:
            if args.from_store:
                found = stored_result(store, spec)
                if found is None:
                    print(f"{spec}: nothing stored", file=sys.stderr)
                    continue
                result = found
            else:
                result = evaluate_prompt(
                    DEFAULT_PROMPT,
                    spec,
                    tasks,
                    sandbox=args.sandbox,
                    store=store,
                    jobs=args.jobs,
                    benchmark=f"humaneval:{len(tasks)}",
                    progress=_progress(spec),
                )
            rows.append(row(result, spec))
            results[spec] = result
            if args.samples_out is not None:
                count = write_samples(store, result, args.samples_out)
                print(f"wrote {count} answers to {args.samples_out}", file=sys.stderr)
    print_table(rows)
    if len(results) > 1:
        print(paired(results))
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
