"""Real models: does the loop find a prompt that is better on problems it never saw?

For each strategy x promotion policy asked for, run the loop exactly as ``sipdo
run`` does (code domain, the shipped seed tasks, the local models: learner
``local:qwen2.5-coder-0.5b``, generator / checker / optimizer the roles'
defaults) on one fixed budget, then grade the initial prompt and the run's final
incumbent on a held-out HumanEval subset with ``sipdo.evaluation`` (greedy
learner, sipdo's full verification), and print one table: promoted versions,
held-out pass@1 before -> after, the paired difference with a 95% confidence
interval, tasks fixed / broken, model calls per role, verifications and sandbox
seconds, wall time. Below it, why each candidate was or was not promoted and
which held-out tasks flipped.

The held-out subset is fixed by a rule, never tuned: every k-th problem of
HumanEval in published order, k = 164 // N (N = ``--heldout``), starting at
HumanEval/0 (N = 40: HumanEval/0, 4, 8, ..., 156). HumanEval is only graded
here: it never reaches the loop's seeds, generator, optimizer or learner.

Statistics, per run, on the tasks graded under both prompts: the difference of
pass@1 (after - before) with a 95% paired-bootstrap percentile interval (the
tasks resampled with their pair of outcomes, 10,000 resamples, seeded), and the
exact two-sided McNemar p-value (a binomial test on the discordant tasks: fixed
vs broken). With ~40 tasks only a swing of several tasks is distinguishable
from noise; the interval says how wide the doubt is.

Everything goes to the run store (``--db``): runs under deterministic ids
(``improve-STRATEGY-GATE-DIGEST``, the digest of the budget, models and seed)
and evals under their settings' digest, so a killed benchmark run again resumes
the unfinished run from its checkpoint and reuses every finished run and graded
held-out sample (the initial prompt's eval is shared by every run).

    python benchmarks/improvement.py --quick --db sqlite:////tmp/improve.db
    python benchmarks/improvement.py --strategy sipdo,gepa --gate statistical,strict \
        --heldout 40 --db sqlite:////tmp/improve.db
    python benchmarks/improvement.py ... --from-store     # the table from finished runs only

``--learner`` / ``--optimizer`` / ``--generator`` / ``--checker`` take any model
spec, so the same command runs against an OpenAI-compatible server.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from math import comb
from pathlib import Path
from typing import Any

STRATEGIES = ("sipdo", "protegi", "gepa", "espl")
GATES = ("strict", "statistical", "pareto")
ROLES = ("learner", "generator", "checker", "optimizer")
DEFAULT_LEARNER = "local:qwen2.5-coder-0.5b"
HUMANEVAL_SIZE = 164


# -- the held-out subset ------------------------------------------------------------


def heldout_indices(n: int, total: int = HUMANEVAL_SIZE) -> list[int]:
    """The rule: every k-th problem from the first, k = total // n (n problems)."""
    if not 1 <= n <= total:
        raise ValueError(f"held-out size must be in 1..{total}, got {n}")
    stride = total // n
    return [i * stride for i in range(n)]


def heldout_tasks(n: int) -> list[Any]:
    from sipdo.evaluation import load_benchmark

    tasks = load_benchmark("humaneval")
    return [tasks[i] for i in heldout_indices(n, len(tasks))]


# -- statistics on paired per-task outcomes ----------------------------------------------


@dataclass(frozen=True)
class Paired:
    """Before/after outcomes on the tasks graded under both prompts."""

    n: int
    before: int
    after: int
    fixed: tuple[str, ...]  # failed before, pass after
    broken: tuple[str, ...]  # passed before, fail after
    diff: float  # pass@1 after - before
    ci_low: float
    ci_high: float
    p_mcnemar: float


def mcnemar_exact(fixed: int, broken: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs as Binomial(fixed + broken, 1/2)."""
    m = fixed + broken
    if m == 0:
        return 1.0
    tail = sum(comb(m, i) for i in range(min(fixed, broken) + 1)) / 2**m
    return float(min(1.0, 2 * tail))


def bootstrap_ci(
    deltas: Sequence[int], *, resamples: int = 10_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the mean of ``deltas`` (per-task after - before, in -1/0/1)."""
    n = len(deltas)
    if n == 0:
        return (0.0, 0.0)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(deltas, k=n)) / n for _ in range(resamples))
    alpha = (1 - level) / 2
    low = means[int(alpha * resamples)]
    high = means[min(resamples - 1, int((1 - alpha) * resamples))]
    return (low, high)


def paired(
    before: Mapping[str, bool], after: Mapping[str, bool], *, resamples: int = 10_000
) -> Paired:
    """Compare two prompts on the tasks both were graded on (ids in ``before``'s order)."""
    common = [t for t in before if t in after]
    fixed = tuple(t for t in common if after[t] and not before[t])
    broken = tuple(t for t in common if before[t] and not after[t])
    deltas = [int(after[t]) - int(before[t]) for t in common]
    n = len(common)
    low, high = bootstrap_ci(deltas, resamples=resamples)
    return Paired(
        n=n,
        before=sum(before[t] for t in common),
        after=sum(after[t] for t in common),
        fixed=fixed,
        broken=broken,
        diff=(sum(deltas) / n) if n else 0.0,
        ci_low=low,
        ci_high=high,
        p_mcnemar=mcnemar_exact(len(fixed), len(broken)),
    )


# -- the table ------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def render(rows: Sequence[Mapping[str, Any]], label: str) -> str:
    """The table (one line per run), then per run its decisions and flipped tasks."""
    lines = [label]
    head = (
        f"{'strategy':<8} {'gate':<11} {'promoted':>8} {'held-out before->after':>23} "
        f"{'diff pts [95% CI]':>22} {'McNemar p':>9} {'fixed/broken':>12} "
        f"{'calls L/G/C/O':>15} {'held-out calls':>14} {'verif.':>6} {'sandbox s':>9} "
        f"{'run wall':>9} {'held-out s':>10}"
    )
    lines.append(head)
    for r in rows:
        p = r["paired"]
        n = p["n"]
        calls = "/".join(str(r["calls"].get(role, 0)) for role in ROLES)
        before_after = (
            f"{p['before']}/{n} ({100 * p['before'] / n:.1f}%) -> {p['after']}/{n} "
            f"({100 * p['after'] / n:.1f}%)"
            if n
            else "-"
        )
        ci = f"{_pct(p['diff'])} [{_pct(p['ci_low'])}, {_pct(p['ci_high'])}]"
        lines.append(
            f"{r['strategy']:<8} {r['gate']:<11} {r['promoted']:>8} {before_after:>23} "
            f"{ci:>22} {p['p_mcnemar']:>9.3f} "
            f"{str(len(p['fixed'])) + '/' + str(len(p['broken'])):>12} {calls:>15} "
            f"{r['heldout_calls']:>14} {r['verifications']:>6} {r['sandbox_seconds']:>9.0f} "
            f"{_clock(r['wall_seconds']):>9} {r['heldout_model_seconds']:>10.0f}"
        )
    lines.append(
        "diff: held-out pass@1 after - before in points, 95% paired-bootstrap interval; "
        "McNemar: exact two-sided on fixed vs broken tasks; calls: the loop's model calls "
        "per role (learner/generator/checker/optimizer); held-out calls: learner calls of "
        "the two held-out evals not already in the store; verif.: learner answers graded + "
        "generated tasks verified in the sandbox; run wall: the run's created -> finished "
        "time (a resumed run includes its pause); held-out s: model seconds of the final "
        "prompt's held-out eval."
    )
    for r in rows:
        lines.append("")
        lines.append(
            f"{r['strategy']} x {r['gate']} (run {r['run_id']}, stopped: {r['stop_reason']}; "
            f"tasks accepted {r['accepted_tasks']}, rejected {r['rejected_tasks']}):"
        )
        if not r["decisions"]:
            lines.append("  no candidate reached a decision")
        for d in r["decisions"]:
            mark = "PROMOTED" if d["promoted"] else ("vetoed" if d["vetoed"] else "kept back")
            flags = f"; flags: {', '.join(d['flags'])}" if d["flags"] else ""
            others = d.get("others") or {}
            if others:
                said = {True: "yes", False: "no", None: "more evidence first"}
                flags += "; other gates: " + ", ".join(f"{g} {said[v]}" for g, v in others.items())
            held = d.get("heldout")
            if held:
                flags += (
                    f"; held-out if shipped: {held['before']} -> {held['after']}/{held['n']} "
                    f"({_pct(held['diff'])} pts, fixed {len(held['fixed'])}, "
                    f"broke {len(held['broken'])})"
                )
            lines.append(
                f"  {d['candidate']} ({d['operator'] or '?'}) {mark}: {d['reason']} "
                f"[training: fixed {d['wins']}, broke {d['losses']}]{flags}"
            )
        p = r["paired"]
        if r.get("before_answers", "asked") != "asked":
            lines.append(
                f"  initial prompt's held-out answers: {r['before_answers']}, graded again"
            )
        lines.append(
            f"  held-out fixed: {', '.join(p['fixed']) or '-'}; "
            f"broken: {', '.join(p['broken']) or '-'}"
        )
    return "\n".join(lines)


# -- running one strategy x gate ----------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What decides a run's outcome; its digest names the run."""

    iterations: int
    tasks_per_iteration: int
    max_refinements: int
    learner: str
    generator: str
    checker: str
    optimizer: str
    seed: int
    sandbox: str
    seeds: str | None = None  # the training tasks' file ('sha256:...' of its text); None: shipped
    demonstrations: int = 0

    def run_id(self, strategy: str, gate: str) -> str:
        # settings left at their defaults stay out of the digest: older runs keep their ids
        fields = asdict(self)
        for name in ("seeds", "demonstrations"):
            if not fields[name]:
                del fields[name]
        text = json.dumps(fields, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        return f"improve-{strategy}-{gate}-{digest}"


def run_loop(
    store: Any,
    settings: Settings,
    strategy: str,
    gate: str,
    seed_tasks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run (or resume, or read back) the loop for one strategy x gate; its final state.
    ``seed_tasks`` (the ``--seeds`` file's tasks) replace the shipped seed tasks."""
    from sipdo.cli.run import RunOptions, execute
    from sipdo.errors import RunNotFoundError

    run_id = settings.run_id(strategy, gate)
    try:
        store.get_run(run_id)
    except RunNotFoundError:
        opts = RunOptions(
            model=settings.learner,
            generator_model=settings.generator,
            checker_model=settings.checker,
            optimizer_model=settings.optimizer,
            iterations=settings.iterations,
            tasks_per_iteration=settings.tasks_per_iteration,
            max_refinements=settings.max_refinements,
            sandbox=settings.sandbox,
            strategy=strategy,
            gate=gate,
            seed=settings.seed,
            demonstrations=settings.demonstrations,
            seed_tasks=seed_tasks,
        )
        return execute(store, opts, prompt=None, run_id=run_id, resume=None, explicit={})
    return execute(store, RunOptions(), prompt=None, run_id=None, resume=run_id, explicit={})


def _progress(label: str) -> Any:
    started = time.monotonic()

    def show(event: dict[str, Any]) -> None:
        if event["kind"] == "start":
            print(
                f"[held-out {label}] {event['todo']} to solve, {event['kept']} kept",
                flush=True,
            )
        elif event["done"] % 5 == 0 or event["done"] == event["total"]:
            print(
                f"[held-out {label}] {event['done']}/{event['total']} "
                f"{time.monotonic() - started:.0f}s",
                flush=True,
            )

    return show


def grade(
    store: Any,
    prompt: str,
    settings: Settings,
    tasks: Sequence[Any],
    demos: Sequence[Mapping[str, Any]] = (),
    **source: Any,
) -> Any:
    """The learner's held-out eval under ``prompt``, with a version's ``demos`` shown
    before each task as in training (``sipdo.graph.demonstrations.Demonstrating``)."""
    from sipdo.cli.scripted import materialize
    from sipdo.evaluation import evaluate_prompt
    from sipdo.graph.demonstrations import Demonstrating
    from sipdo.plugins.domains.code import CodeDomain

    return evaluate_prompt(
        prompt,
        materialize({"learner": settings.learner})["learner"],  # sipdo run's own resolution
        list(tasks),
        domain=Demonstrating(CodeDomain(), demos) if demos else None,
        sandbox=settings.sandbox,
        store=store,
        benchmark=f"humaneval:every-{HUMANEVAL_SIZE // len(tasks)}th:{len(tasks)}",
        progress=_progress(str(source.get("source_version") or "initial")),
        **source,
    )


def reusable_answers(
    source: Any, prompt: str, learner: str, tasks: Sequence[Any]
) -> dict[str, str]:
    """The learner's greedy answers to ``tasks`` under ``prompt`` that another store's
    evals already hold (same prompt, model, temperature 0, seed 0, one sample a task, no
    demonstrations shown), by task id; tasks none of them answered are missing from the
    result."""
    from sipdo.evaluation import task_key

    wanted = {task_key(t.id) for t in tasks}
    found: dict[str, str] = {}
    for ev in source.list_evals():
        config = ev.config or {}
        same = (
            ev.prompt == prompt
            and ev.model == learner
            and config.get("mode") == "model"
            and config.get("temperature") == 0
            and config.get("seed") == 0
            and config.get("samples_per_task") == 1
            # a candidate that adds demonstrations keeps the instructions' text: its evals
            # say so in their domain ("code+demos-...") and answer another prompt
            and "+demos" not in str(config.get("domain", ""))
        )
        if not same:
            continue
        for row in source.eval_results(ev.eval_id):
            if row.task_id in wanted and row.sample == 0 and row.status in ("graded", "no_code"):
                found.setdefault(row.task_id, row.answer)
    return found


def grade_reused(
    store: Any, answers: Mapping[str, str], settings: Settings, tasks: Sequence[Any], path: Path
) -> Any:
    """Grade stored answers again (no model call) as the initial prompt's held-out eval."""
    from sipdo.evaluation import grade_samples, task_key

    with path.open("w", encoding="utf-8") as out:
        for task in tasks:
            key = task_key(task.id)
            out.write(json.dumps({"task_id": key, "solution": answers[key]}) + "\n")
    return grade_samples(
        path,
        list(tasks),
        sandbox=settings.sandbox,
        store=store,
        benchmark=f"humaneval:every-{HUMANEVAL_SIZE // len(tasks)}th:{len(tasks)}",
        progress=_progress("initial, reused answers"),
    )


def outcomes(result: Any) -> dict[str, bool]:
    """Per task (graded ones only): did the greedy sample pass sipdo's full verification?"""
    return {t.task_id: bool(t.full) for t in result.tasks if t.n}


def candidates(store: Any, run_id: str) -> list[Any]:
    """The run's prompt versions but the initial one (which has no parent)."""
    return [v for v in store.prompt_lineage(run_id) if v.parent_id or v.parent_ids]


def version_demos(version: Any, final: Mapping[str, Any]) -> list[Any]:
    """The pool entries ``version``'s demonstrations component names (none without)."""
    from sipdo.graph.demonstrations import of_candidate

    return of_candidate({"components": version.components}, final.get("demonstrations") or {})


def decisions(store: Any, run_id: str) -> list[dict[str, Any]]:
    """Each candidate: promoted or why not, its training wins/losses, its flags."""
    out = []
    for version in candidates(store, run_id):
        decision = version.meta.get("decision") or {}
        out.append(
            {
                "candidate": version.version_id,
                "decided": bool(decision),
                "operator": version.operator,
                "promoted": bool(version.accepted),
                "reason": str(decision.get("reason") or version.feedback or "-")[:160],
                "wins": len(decision.get("wins") or []),
                "losses": len(decision.get("losses") or []),
                "vetoed": bool(decision.get("vetoed")),
                # what the other shipped gates decided on the same evidence (None: more first)
                "others": {
                    str(g): (v or {}).get("promoted")
                    for g, v in (decision.get("others") or {}).items()
                },
                "flags": [str(f)[:80] for f in version.meta.get("flags") or []],
            }
        )
    return out


def initial_eval(
    store: Any, initial: str, settings: Settings, tasks: Sequence[Any], reuse_from: str | None
) -> tuple[Any, str]:
    """The initial prompt's held-out eval and where its answers came from.

    This store's own greedy eval of it when that is complete (every run shares it);
    else, with ``reuse_from``, the answers another store holds for every task, graded
    again (looked up now, so an eval still filling that store counts as far as it got);
    else the model is asked."""
    from sipdo.store import RunStore

    if reuse_from is not None and initial == _default_prompt():
        own = reusable_answers(store, initial, settings.learner, tasks)
        if len(own) < len(tasks):
            with RunStore(reuse_from) as source:
                found = reusable_answers(source, initial, settings.learner, tasks)
            if len(found) == len(tasks):
                path = Path(f"/tmp/improvement-initial-{settings.run_id('x', 'y')[-8:]}.jsonl")
                return grade_reused(store, found, settings, tasks, path), f"reused {reuse_from}"
            print(f"{reuse_from}: {len(tasks) - len(found)} task(s) not answered; asking anew")
    return grade(store, initial, settings, tasks), "asked"


def measure(
    store: Any,
    settings: Settings,
    strategy: str,
    gate: str,
    tasks: Sequence[Any],
    reuse_from: str | None = None,
    seed_tasks: list[dict[str, Any]] | None = None,
    grade_candidates: bool = False,
) -> dict[str, Any]:
    """One table row: run the loop, grade initial and final prompts held out; with
    ``grade_candidates`` also every other candidate a gate decided on (what shipping
    it would have done: the gates' counterfactual on held-out data)."""
    final = run_loop(store, settings, strategy, gate, seed_tasks)
    run_id = settings.run_id(strategy, gate)
    run = store.get_run(run_id)
    initial = run.initial_prompt
    best = str(final.get("best_prompt") or run.best_prompt or initial)
    before, source = initial_eval(store, initial, settings, tasks, reuse_from)
    versions = {v.version_id: v for v in store.prompt_lineage(run_id)}
    best_id = str(final.get("version_id") or "best")
    best_demos = version_demos(versions[best_id], final) if best_id in versions else []
    if best == initial and not best_demos:
        after = before
    else:
        after = grade(
            store, best, settings, tasks, best_demos, source_run_id=run_id, source_version=best_id
        )
    made_decisions = decisions(store, run_id)
    if grade_candidates:
        for d in made_decisions:
            if not d["decided"] or d["candidate"] == best_id:
                continue
            version = versions[d["candidate"]]
            shipped = grade(
                store,
                version.text,
                settings,
                tasks,
                version_demos(version, final),
                source_run_id=run_id,
                source_version=version.version_id,
            )
            d["heldout"] = asdict(paired(outcomes(before), outcomes(shipped)))
    calls: dict[str, int] = {}
    for usage in store.usage(run_id):
        calls[usage.role] = calls.get(usage.role, 0) + usage.calls
    spent = [r.spent for r in {id(before): before, id(after): after}.values() if r.spent]
    made = candidates(store, run_id)
    wall = (
        (run.finished_at - run.created_at).total_seconds() if run.finished_at is not None else 0.0
    )
    return {
        "strategy": strategy,
        "gate": gate,
        "run_id": run_id,
        "stop_reason": final.get("stop_reason") or run.stop_reason,
        "promoted": sum(1 for v in made if v.accepted),
        "candidates": len(made),
        "accepted_tasks": len(final.get("accepted_tasks") or []),
        "rejected_tasks": len(final.get("rejected_tasks") or []),
        "paired": asdict(paired(outcomes(before), outcomes(after))),
        "before_eval": before.eval_id,
        "before_answers": source,
        "after_eval": after.eval_id,
        "calls": calls,
        "heldout_calls": sum(s.calls for s in spent),
        "verifications": len(store.attempts(run_id))
        + sum(len(t.verdicts) for t in store.tasks(run_id)),
        "sandbox_seconds": float((final.get("budget_used") or {}).get("sandbox_seconds", 0.0)),
        "wall_seconds": wall,
        "heldout_model_seconds": after.usage.model_seconds,
        "decisions": made_decisions,
        "final_prompt": best,
    }


def training_tasks(path: Path) -> tuple[list[dict[str, Any]], str]:
    """The ``--seeds`` file's tasks and the digest of its text. Held out means held
    out: a task named like a HumanEval problem, or a copy of one under another name
    (the prompt-model guard, ``sipdo.trprompt.hygiene.HeldOut``), is refused."""
    from sipdo.cli.run import read_seeds
    from sipdo.errors import ConfigurationError
    from sipdo.evaluation import load_benchmark
    from sipdo.trprompt.hygiene import HeldOut

    seeds = read_seeds(path)
    heldout = {t.entry_point for t in load_benchmark("humaneval")}
    clash = sorted({str(t.get("entry_point")) for t in seeds} & heldout)
    if clash:
        raise ConfigurationError(f"{path}: training tasks named like HumanEval problems: {clash}")
    HeldOut.humaneval().check(seeds, what=f"training tasks in {path}")  # copies, renamed too
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return seeds, f"sha256:{digest}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from sipdo.plugins.optimizers import DEFAULT_STRATEGY

    parser.add_argument("--strategy", default=DEFAULT_STRATEGY, help=f"comma list of {STRATEGIES}")
    parser.add_argument("--gate", default="statistical", help=f"comma list of {GATES}")
    parser.add_argument("--heldout", type=int, default=40, help="held-out problems (every k-th)")
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--tasks-per-iteration", type=int, default=1)
    parser.add_argument("--max-refinements", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learner", default=DEFAULT_LEARNER)
    for role in ("generator", "checker", "optimizer"):
        parser.add_argument(f"--{role}", default=None, help=f"default: the {role}'s default")
    parser.add_argument("--sandbox", default="auto", choices=["auto", "docker", "process"])
    parser.add_argument(
        "--seeds",
        type=Path,
        default=None,
        help="training tasks, JSONL (e.g. examples/code_train.jsonl); default: the shipped seeds. "
        "A task whose entry point is a held-out problem's is refused",
    )
    parser.add_argument(
        "--demonstrations", type=int, default=0, help="demonstrations a candidate may carry"
    )
    parser.add_argument("--db", default=None, help="run store URL (default: sipdo's)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the first strategy and gate only, one iteration, one refinement, 16 held-out",
    )
    parser.add_argument(
        "--reuse-initial-from",
        default=None,
        metavar="URL",
        help="a store whose evals hold the learner's greedy answers under the initial prompt "
        "(e.g. benchmarks/heldout.py's): those answers are graded again instead of asked anew",
    )
    parser.add_argument(
        "--grade-candidates",
        action="store_true",
        help="also grade held out every candidate a gate kept back (what shipping it would "
        "have done); costs one held-out eval per candidate",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument(
        "--from-store", action="store_true", help="run nothing: only finished runs and evals"
    )
    args = parser.parse_args(argv)
    strategies = [s.strip() for s in args.strategy.split(",") if s.strip()]
    gates = [g.strip() for g in args.gate.split(",") if g.strip()]
    for name, given, known in (("strategy", strategies, STRATEGIES), ("gate", gates, GATES)):
        unknown = [x for x in given if x not in known]
        if unknown or not given:
            parser.error(f"--{name}: {', '.join(unknown) or 'none given'}; known: {known}")
    if args.quick:
        strategies, gates = strategies[:1], gates[:1]
        args.iterations, args.max_refinements, args.heldout = 1, 1, 16
    from sipdo.plugins.models import default_model_spec
    from sipdo.store import RunStore, default_url

    tasks = heldout_tasks(args.heldout)
    seed_tasks, seeds_digest = None, None
    if args.seeds is not None:
        seed_tasks, seeds_digest = training_tasks(args.seeds)
    settings = Settings(
        iterations=args.iterations,
        tasks_per_iteration=args.tasks_per_iteration,
        max_refinements=args.max_refinements,
        learner=args.learner,
        generator=args.generator or default_model_spec("generator"),
        checker=args.checker or default_model_spec("checker"),
        optimizer=args.optimizer or default_model_spec("optimizer"),
        seed=args.seed,
        sandbox=args.sandbox,
        seeds=seeds_digest,
        demonstrations=args.demonstrations,
    )
    specs = (settings.learner, settings.generator, settings.checker, settings.optimizer)
    kind = "scripted models" if any(s.startswith("scripted:") for s in specs) else "real models"
    label = (
        f"{kind}, {len(tasks)} held-out problems (HumanEval every "
        f"{HUMANEVAL_SIZE // len(tasks)}th from /0), learner {settings.learner} greedy, "
        f"generator {settings.generator}, checker {settings.checker}, optimizer "
        f"{settings.optimizer}; budget: {settings.iterations} iteration(s), "
        f"{settings.tasks_per_iteration} generated task(s) each, up to "
        f"{settings.max_refinements} optimizer step(s), seed {settings.seed}; training tasks: "
        f"{f'{len(seed_tasks)} from {args.seeds}' if seed_tasks else 'the shipped seeds'}"
        f"{f'; up to {settings.demonstrations} demonstrations' if settings.demonstrations else ''}"
    )
    rows: list[dict[str, Any]] = []
    with RunStore(args.db or default_url()) as store:
        for strategy in strategies:
            for gate in gates:
                if args.from_store and not _finished(store, settings.run_id(strategy, gate)):
                    print(f"{strategy} x {gate}: not finished in the store", file=sys.stderr)
                    continue
                started = time.monotonic()
                rows.append(
                    measure(
                        store,
                        settings,
                        strategy,
                        gate,
                        tasks,
                        args.reuse_initial_from,
                        seed_tasks,
                        grade_candidates=args.grade_candidates,
                    )
                )
                print(
                    f"[improvement] {strategy} x {gate} done in {time.monotonic() - started:.0f}s",
                    flush=True,
                )
    print()
    print(render(rows, label))
    if args.json is not None:
        args.json.write_text(json.dumps({"label": label, "rows": rows}, indent=2) + "\n")
    return 0


def _default_prompt() -> str:
    """The prompt ``sipdo run`` optimizes in the code domain when none is given."""
    from sipdo.plugins.domains.code import CodeDomain

    return str(CodeDomain().default_prompt)


def _finished(store: Any, run_id: str) -> bool:
    from sipdo.errors import RunNotFoundError

    try:
        return bool(store.get_run(run_id).status == "finished")
    except RunNotFoundError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
