"""Controlled benchmark: the four strategies x three gates on the same budget.

A controlled world, not real models: the tasks (the code domain's seeds and
renamed variants the scripted generator writes) fall into four hidden
categories, and the scripted learner solves a task of category ``k`` with
probability 0.9 when the system prompt holds rule ``k``, 0.25 otherwise, 0.05
when it holds the harmful rule for ``k`` (seeded per prompt, task and sample:
stochastic, but the same run twice gives the same table). The scripted
optimizer answers every request layout the strategies use; when it writes a
prompt it adds, with probability 0.6, a missing rule for a category its request
shows failing (through failed tasks, critiques or other prompts' rules), else a
harmful rule (0.15) or a neutral one. Grading is instant (no sandbox); one
"sandbox run" is one verification of a learner answer. The whole graph runs:
real strategies, real gates, real budget accounting.

The known optimum holds all four rules and no harmful one. Per strategy x gate,
over ``--seeds`` runs: how many runs reached it, model calls and sandbox runs
until it was first promoted (mean over the runs that reached it), total calls,
the true expected pass rate of the final prompt, and false promotions (a
promoted prompt whose true pass rate is not above the one it replaced).

    .venv/bin/python benchmarks/strategies.py [--seeds 5] [--calls 300] [--quick]

``--learner SPEC [--optimizer SPEC]`` runs the same comparison with real models
instead (code domain, real verifiers in a process sandbox, one short iteration
on ``--tasks`` seed tasks): slow on a CPU — keep ``--calls`` small.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from sipdo.graph import Budget, create_sipdo_graph
from sipdo.plugins.domains.base import SandboxProvider, Task, VerdictDict
from sipdo.plugins.domains.code import CodeDomain
from sipdo.plugins.registry import load
from sipdo.testing import ScriptedChatModel

STRATEGIES = ("sipdo", "protegi", "gepa", "espl")
GATES = ("strict", "statistical", "pareto")
INITIAL = "You write Python functions."

SEEDS = {t["entry_point"]: t for t in CodeDomain().seed_tasks()}
CATEGORY = {name: i // 2 for i, name in enumerate(SEEDS)}  # 4 categories of 2 seeds
RULES = (
    "Handle empty inputs first.",
    "Check index bounds and wrap-around.",
    "Validate nesting and ordering.",
    "Count duplicates and ties explicitly.",
)
HARMFUL = (
    "Assume inputs are never empty.",
    "Ignore the ordering of elements.",
    "Skip validation to keep the code short.",
    "Treat equal values as distinct entries.",
)
NEUTRAL = ("Be concise.", "Use clear variable names.", "Prefer the standard library.")
P_RULE, P_BASE, P_HARM = 0.9, 0.25, 0.05
P_INFORMED, P_HARMFUL = 0.6, 0.15


def success_p(prompt: str, category: int) -> float:
    if HARMFUL[category] in prompt:
        return P_HARM
    return P_RULE if RULES[category] in prompt else P_BASE


def quality(prompt: str) -> float:
    """The true expected pass rate of a prompt over the four categories."""
    return sum(success_p(prompt, k) for k in range(4)) / 4


def is_optimum(prompt: str) -> bool:
    return all(r in prompt for r in RULES) and not any(h in prompt for h in HARMFUL)


def _rng(*parts: object) -> random.Random:
    return random.Random(hashlib.sha256(repr(parts).encode()).hexdigest())


class World:
    """Tasks, categories and the scripted roles of one run."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.tasks: dict[str, dict[str, Any]] = dict(SEEDS)
        self.category = dict(CATEGORY)
        self.samples: dict[tuple[str, str], int] = {}
        self.variants = 0
        self.verifications = 0
        self.calls = {"learner": 0, "optimizer": 0, "generator": 0, "checker": 0}

    def entries(self, text: str) -> list[str]:
        return [e for e in re.findall(r"def\s+([A-Za-z_]\w*)\s*\(", text) if e in self.tasks]

    # -- roles ---------------------------------------------------------------------

    def learner(self, messages: list[BaseMessage]) -> str:
        self.calls["learner"] += 1
        system, entry = str(messages[0].content), self.entries(str(messages[-1].content))[0]
        n = self.samples[(system, entry)] = self.samples.get((system, entry), 0) + 1
        ok = _rng(self.seed, system, entry, n).random() < success_p(system, self.category[entry])
        code = (
            self.tasks[entry]["reference_solution"] if ok else f"def {entry}(*a):\n    return 0\n"
        )
        return f"```python\n{code}```"

    def checker(self, messages: list[BaseMessage]) -> str:
        self.calls["checker"] += 1
        entry = self.entries(str(messages[-1].content))[0]
        return f"```python\n{self.tasks[entry]['reference_solution']}```"

    def generator(self, messages: list[BaseMessage]) -> dict[str, Any]:
        self.calls["generator"] += 1
        found = [e for e in self.entries(str(messages[-1].content)) if e in SEEDS]
        base_names = [e.split("_v")[0] for e in self.entries(str(messages[-1].content))]
        rng = _rng(self.seed, "gen", self.variants)
        base = rng.choice(found or base_names or list(SEEDS))
        base = base if base in SEEDS else rng.choice(list(SEEDS))
        self.variants += 1
        name = f"{base}_v{self.variants}"
        task = {
            k: str(SEEDS[base][k]).replace(base, name)
            for k in ("prompt", "entry_point", "reference_solution", "tests")
        }
        task["weakness"] = f"variant of {base}"
        self.tasks[name] = task
        self.category[name] = CATEGORY[base]
        return task

    def optimizer(self, messages: list[BaseMessage]) -> str:
        self.calls["optimizer"] += 1
        text = "\n".join(str(m.content) for m in messages)
        rng = _rng(self.seed, "opt", text, self.calls["optimizer"])
        hints = self._hints(text)
        schema = re.search(r"matching this JSON schema:\n(\{.*\})\s*$", text, re.DOTALL)
        if schema:
            props = json.loads(schema.group(1)).get("properties", {})
            words = [f"tasks of category {k} fail" for k in hints] or ["the solver fails"]
            if "failure_modes" in props:
                return json.dumps({"failure_modes": [{"pattern": w} for w in words]})
            if "recommendations" in props:
                return json.dumps({"recommendations": words})
            if "critiques" in props:
                return json.dumps({"critiques": words})
            return json.dumps({k: "x" for k in props})
        current = re.search(r"<<<\n(.*?)\n>>>", text, re.DOTALL)
        prompt = current.group(1).strip() if current else INITIAL
        if "ONE new general rule" in text:  # the one-rule fallback (optimizers.lesson)
            return f"RULE: {self._rule(rng, hints, prompt)}"
        if "variation" in text:  # a paraphrase: same rules, other words
            body = prompt.removeprefix("In short: ")
            return f"<prompt>\n{'In short: ' + body if body == prompt else body}\n</prompt>"
        rule = self._rule(rng, hints, prompt)
        if "SEARCH/REPLACE" in text:
            return f"Lesson: one rule.\n<<<<<<< SEARCH\n=======\n{rule}\n>>>>>>> REPLACE\n"
        return f"<prompt>\n{prompt}\n{rule}\n</prompt>\nRATIONALE: covers the failures"

    def _rule(self, rng: random.Random, hints: Sequence[int], prompt: str) -> str:
        """A missing rule for a category shown failing (``P_INFORMED``), else a harmful
        (``P_HARMFUL``) or a neutral one."""
        missing = [k for k in hints if RULES[k] not in prompt]
        draw = rng.random()
        if missing and draw < P_INFORMED:
            return RULES[rng.choice(missing)]
        if draw < P_INFORMED + P_HARMFUL:
            return HARMFUL[rng.randrange(4)]
        return rng.choice(NEUTRAL)

    def _hints(self, text: str) -> list[int]:
        """Categories a request shows failing: its tasks, critiques and others' rules."""
        cats = {self.category[e] for e in self.entries(text)}
        cats |= {int(k) for k in re.findall(r"category (\d)", text)}
        cats |= {k for k, rule in enumerate(RULES) if rule in text}
        return sorted(cats)


class ControlledDomain(CodeDomain):
    """The code domain graded in-process: an answer passes iff it is the reference."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world

    async def averify_task(
        self,
        task: Task,
        *,
        checker_answer: str | None,
        sandbox: SandboxProvider,
        checker_answers: Sequence[str] = (),
    ) -> VerdictDict:
        return {"passed": True, "score": 1.0, "feedback": "accepted"}

    async def averify_answer(
        self, task: Task, answer: str, *, sandbox: SandboxProvider
    ) -> VerdictDict:
        self.world.verifications += 1
        ok = answer.strip() == str(task["reference_solution"]).strip()
        return {"passed": ok, "score": float(ok), "feedback": "" if ok else "wrong output"}


class SampledModel(ScriptedChatModel):
    """A scripted learner that says it samples (so policies may ask for resamples)."""

    temperature: float = 0.7


async def run_once(strategy: str, gate: str, seed: int, calls: int) -> dict[str, Any]:
    world = World(seed)
    graph = create_sipdo_graph(
        SampledModel(responder=world.learner, name="learner"),
        generator_model=ScriptedChatModel(responder=world.generator, name="generator"),
        checker_model=ScriptedChatModel(responder=world.checker, name="checker"),
        optimizer_model=ScriptedChatModel(responder=world.optimizer, name="optimizer"),
        domain=ControlledDomain(world),
        strategy=load("sipdo.optimizers", strategy)(),
        gate=gate,
        seed=seed,
        sandbox=None,
        budget=Budget(iterations=6, tasks_per_iteration=2, max_refinements=3, model_calls=calls),
    )
    seeds = [dict(SEEDS[name]) for name in list(SEEDS)[::2]]  # one seed task per category
    best, reached, false = INITIAL, None, 0
    async for update in graph.astream(
        {"prompt": INITIAL, "seed_tasks": seeds}, stream_mode="updates"
    ):
        for change in update.values():
            new = (change or {}).get("best_prompt")
            if not new or new == best:
                continue
            false += quality(new) <= quality(best)
            best = new
            if reached is None and is_optimum(best):
                reached = (sum(world.calls.values()), world.verifications)
    return {
        "reached": reached,
        "calls": sum(world.calls.values()),
        "runs": world.verifications,
        "quality": quality(best),
        "false": false,
    }


def mean(xs: Sequence[float]) -> str:
    return f"{statistics.fmean(xs):.0f}" if xs else "-"


def row(results: Sequence[Mapping[str, Any]]) -> list[str]:
    hit = [r["reached"] for r in results if r["reached"]]
    return [
        f"{len(hit)}/{len(results)}",
        mean([h[0] for h in hit]),
        mean([h[1] for h in hit]),
        mean([r["calls"] for r in results]),
        f"{statistics.fmean(r['quality'] for r in results):.3f}",
        str(sum(r["false"] for r in results)),
    ]


async def run_real(
    strategy: str, gate: str, learner: str, optimizer: str, calls: int, tasks: int
) -> dict[str, Any]:
    """One run with real models on the code domain (real verifiers, process sandbox)."""
    from sipdo.plugins.optimizers.scores import mean_score
    from sipdo.sandbox.process import ProcessSandbox

    with ProcessSandbox() as sandbox:
        graph = create_sipdo_graph(
            learner,
            optimizer_model=optimizer,
            strategy=load("sipdo.optimizers", strategy)(),
            gate=gate,
            sandbox=sandbox,
            budget=Budget(
                iterations=1, tasks_per_iteration=1, max_refinements=2, model_calls=calls
            ),
        )
        started = time.perf_counter()
        seeds = [dict(t) for t in list(SEEDS.values())[:tasks]]
        out = await graph.ainvoke({"prompt": INITIAL, "seed_tasks": seeds})
    accepted = [v["version_id"] for v in out["prompt_versions"] if v["accepted"]]
    task_ids = list(out["verified_tasks"])
    table = out["score_table"]
    return {
        "promoted": len(accepted) - 1,
        "before": mean_score(table, accepted[0], task_ids),
        "after": mean_score(table, accepted[-1], task_ids),
        "tasks": len(task_ids),
        "candidates": len(out["candidates"]),
        "calls": dict(out["budget_used"].get("model_calls", {})),
        "wall_s": time.perf_counter() - started,
        "stop": out["stop_reason"],
        "ungradable": sum(
            len(h.get("ungradable", [])) for h in out["history"] if h["kind"] == "learner"
        ),
    }


async def main_real(args: argparse.Namespace) -> None:
    print(
        f"REAL MODELS (learner {args.learner}, optimizer {args.optimizer}; code domain, "
        f"process sandbox; {args.tasks} seed tasks, 1 iteration, 2 refinements, "
        f"{args.calls} calls; pass rates on the run's own verified tasks, not held out)"
    )
    print("strategy | gate | promoted | pass before -> after | tasks | candidates | calls | wall")
    for strategy in args.strategies.split(","):
        for gate in args.gates.split(","):
            r = await run_real(strategy, gate, args.learner, args.optimizer, args.calls, args.tasks)
            calls = ", ".join(f"{k} {v}" for k, v in sorted(r["calls"].items()))
            print(
                f"{strategy} | {gate} | {r['promoted']} | {r['before']:.2f} -> {r['after']:.2f} | "
                f"{r['tasks']} ({r['ungradable']} ungradable) | {r['candidates']} | {calls} | "
                f"{r['wall_s']:.0f} s ({r['stop']})",
                flush=True,
            )


async def main_async(args: argparse.Namespace) -> None:
    if args.learner:
        await main_real(args)
        return
    gates = args.gates.split(",")
    strategies = args.strategies.split(",")
    head = ["strategy", "gate", "optimum", "calls→opt", "runs→opt", "calls", "final q", "false+"]
    print(
        "CONTROLLED BENCHMARK (scripted learner/optimizer, hidden rule categories; not a "
        "real-model result)"
    )
    print(
        f"budget: {args.calls} model calls, 6 iterations, 3 refinements, "
        f"seeds 0..{args.seeds - 1}; "
        f"start quality {quality(INITIAL):.3f}, optimum {quality(' '.join(RULES)):.3f}"
    )
    print(" | ".join(head))
    for strategy in strategies:
        for gate in gates:
            started = time.perf_counter()
            results = [await run_once(strategy, gate, s, args.calls) for s in range(args.seeds)]
            cells = [strategy, gate, *row(results)]
            print(" | ".join(cells) + f"   ({time.perf_counter() - started:.0f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="runs per strategy x gate")
    parser.add_argument("--calls", type=int, default=300, help="model-call budget of a run")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--gates", default=",".join(GATES))
    parser.add_argument("--quick", action="store_true", help="2 seeds, strict gate only")
    parser.add_argument("--learner", help="a model spec: run with real models instead")
    parser.add_argument("--optimizer", help="the optimizer's model spec (default: the learner)")
    parser.add_argument("--tasks", type=int, default=4, help="seed tasks of a real run")
    args = parser.parse_args()
    args.optimizer = args.optimizer or args.learner
    if args.quick:
        args.seeds, args.gates = 2, "strict"
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
