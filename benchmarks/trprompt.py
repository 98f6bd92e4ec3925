"""TRPrompt on held-out problems: the trained prompt model vs the run's single prompts.

Issue 14's measurement. On problems the prompt model was never trained on, the
learner's pass@1 under

- the run's initial prompt,
- the run's best single prompt (what ``sipdo run`` promoted),
- the prompt model's per-query prompts after each finished round (conditioned
  on the optimal textual reward of that round and the training instructions),

side by side on the same problems, with wall time and peak memory (RSS of this
process: the prompt model is loaded in it, the learner is llama.cpp in-process
too). The held-out problems are the run's verified tasks the training split held
out, plus the first ``--humaneval N`` HumanEval problems (evaluation only). The
data-hygiene check is printed before anything is graded: no held-out problem is
a training query (by the training's own task key), the training and held-out
splits do not meet, and no training query is a HumanEval problem.

Every eval goes to the run store as it is graded (``sipdo evals list``), so a
killed benchmark resumes and a second run prints the table from the store.

    python benchmarks/trprompt.py --prompt-model DIR --db sqlite:///runs.db \\
        --model local:qwen2.5-coder-0.5b --humaneval 8 --json out.json
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sipdo.cli.scripted import materialize
from sipdo.evaluation import EvalResult, evaluate_prompt, load_benchmark
from sipdo.store import RunStore
from sipdo.trprompt import HeldOut, PromptModel, read_manifest
from sipdo.trprompt.checkpoint import Manifest
from sipdo.trprompt.dataset import task_key
from sipdo.verifiers import CodeTask


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def heldout_set(store: RunStore, manifest: Manifest, humaneval: int) -> list[CodeTask]:
    """The run's held-out verified tasks, then the first ``humaneval`` HumanEval problems."""
    wanted = set(manifest.heldout_keys)
    tasks: dict[str, CodeTask] = {}
    for run_id in manifest.runs:
        for record in store.export(run_id, "eval"):
            key = task_key(record["task"])
            if key in wanted and key not in tasks:
                tasks[key] = CodeTask.model_validate(record["task"])
    return list(tasks.values()) + (
        load_benchmark("humaneval", limit=humaneval) if humaneval else []
    )


def hygiene(store: RunStore, manifest: Manifest, tasks: list[CodeTask]) -> list[str]:
    """The data-hygiene lines; SystemExit if any check fails (nothing is graded then)."""
    train = set(manifest.train_keys)
    lines = [
        f"training queries: {len(train)}, held out of training: {len(manifest.heldout_keys)}",
    ]
    split_overlap = train & set(manifest.heldout_keys)
    bench_overlap = [t.id for t in tasks if task_key(t.model_dump(mode="json")) in train]
    trained_tasks = [
        r["task"]
        for run_id in manifest.runs
        for r in store.export(run_id, "eval")
        if task_key(r["task"]) in train
    ]
    humaneval = HeldOut.humaneval()
    copies = [t.get("id") for t in trained_tasks if humaneval.match(t) is not None]
    lines.append(f"train/held-out split overlap: {len(split_overlap)} (must be 0)")
    lines.append(
        f"benchmark problems that are training queries: {len(bench_overlap)} of {len(tasks)} "
        "(must be 0)"
    )
    lines.append(
        f"training queries that are HumanEval problems: {len(copies)} of {len(trained_tasks)} "
        f"(checked against {humaneval.size}; must be 0)"
    )
    if split_overlap or bench_overlap or copies:
        print("\n".join(lines))
        raise SystemExit("data hygiene check failed: nothing graded")
    return lines


def condition(
    label: str,
    prompt: str,
    tasks: list[CodeTask],
    args: argparse.Namespace,
    store: RunStore,
    writer: PromptModel | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    result: EvalResult = evaluate_prompt(
        prompt,
        materialize({"model": args.model})["model"],  # a scripted: learner for a plumbing check
        tasks,
        sandbox=args.sandbox,
        store=store,
        benchmark="trprompt-heldout",
        jobs=1,
        prompt_model=writer,
    )
    wall = time.perf_counter() - started
    graded = [t for t in result.tasks if t.n]
    row = {
        "condition": label,
        "eval_id": result.eval_id,
        "tasks": len(graded),
        "full_passed": sum(1 for t in graded if t.full),
        "base_passed": sum(1 for t in graded if t.base),
        "pass_at_1": result.pass_at_1,
        "base_pass_at_1": result.base_pass_at_1,
        "per_task": {t.task_id: bool(t.full) for t in graded},
        "problems": len(result.problems),
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(peak_rss_mb(), 0),
    }
    print(
        f"  {label}: {row['full_passed']}/{row['tasks']} full, {row['base_passed']}/{row['tasks']} "
        f"base, {wall:.0f}s, peak RSS {row['peak_rss_mb']:.0f} MB",
        flush=True,
    )
    return row


def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'condition':<34} {'full':>7} {'base':>7} {'pass@1':>7} {'wall s':>7} {'RSS MB':>7}"
    out = [head, "-" * len(head)]
    for r in rows:
        p = "-" if r["pass_at_1"] is None else f"{100 * r['pass_at_1']:.1f}%"
        out.append(
            f"{r['condition']:<34} {r['full_passed']:>3}/{r['tasks']:<3} "
            f"{r['base_passed']:>3}/{r['tasks']:<3} {p:>7} {r['wall_s']:>7.0f} "
            f"{r['peak_rss_mb']:>7.0f}"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompt-model", type=Path, required=True, help="a trained model's DIR")
    parser.add_argument("--db", required=True, help="run store holding the training run(s)")
    parser.add_argument("--model", default="local:qwen2.5-coder-0.5b", help="the learner")
    parser.add_argument("--humaneval", type=int, default=0, help="also the first N HumanEval")
    parser.add_argument("--rounds", default="", help="rounds to grade, e.g. 1,2 (default: all)")
    parser.add_argument("--sandbox", default="process", choices=["auto", "docker", "process"])
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)

    manifest = read_manifest(args.prompt_model)
    if manifest is None or not manifest.rounds:
        raise SystemExit(f"{args.prompt_model}: no trained round")
    rounds = [int(k) for k in args.rounds.split(",") if k] or [r.round for r in manifest.rounds]
    started = time.perf_counter()
    with RunStore(args.db) as store:
        run = store.get_run(manifest.runs[0])
        tasks = heldout_set(store, manifest, args.humaneval)
        print(f"prompt model {args.prompt_model} ({manifest.base_model}), runs {manifest.runs}")
        print("data hygiene:")
        for line in hygiene(store, manifest, tasks):
            print(f"  {line}")
        print(f"held-out problems: {len(tasks)} ({', '.join(t.id for t in tasks)})", flush=True)
        common = (tasks, args, store)
        rows = [
            condition("initial prompt", run.initial_prompt, *common),
            condition("run's best single prompt", run.best_prompt or run.initial_prompt, *common),
        ]
        base = None  # the base is loaded (dequantized) once, each round's adapter on it
        for k in rounds:
            info = next(r for r in manifest.rounds if r.round == k)
            writer = PromptModel.load(args.prompt_model, round=k, base=base)
            label = f"prompt model round {k} (loss {info.train_loss:.2f})"
            instructions = manifest.instructions or run.initial_prompt
            rows.append(condition(label, instructions, *common, writer))
            base = writer.unloaded()
            del writer
            gc.collect()
    print()
    print(table(rows))
    print(f"\ntotal wall {time.perf_counter() - started:.0f}s; learner {args.model}")
    if args.json is not None:
        rounds_done = [asdict(r) for r in manifest.rounds]
        args.json.write_text(json.dumps({"rounds": rounds_done, "rows": rows}, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
