"""One SIPDO iteration with scripted models that sleep 200 ms a call: is the fan-out real?

Prints the wall time of the run, the critical path (the number of sequential
model-call stages, measured from the calls' own timestamps, times the delay)
and their ratio; the target is <= 1.2. By default grading is instant (answers
compared with the reference in-process) so the ratio measures the graph's own
overhead; ``--real`` grades with the real verifiers in a ProcessSandbox and also
prints the sandbox time, which then dominates the wall time.

    .venv/bin/python benchmarks/loop_latency.py [--delay 0.2] [--tasks 4] [--real]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.messages import BaseMessage

from sipdo.graph import Budget, create_sipdo_graph
from sipdo.plugins.domains.base import SandboxProvider, Task, VerdictDict
from sipdo.plugins.domains.code import CodeDomain
from sipdo.testing import ScriptedChatModel

SEEDS = CodeDomain().seed_tasks()
BY_NAME = {t["entry_point"]: t for t in SEEDS}


class InstantDomain(CodeDomain):
    """The code domain graded in-process: an answer passes iff it is the reference."""

    async def averify_task(
        self, task: Task, *, checker_answer: str | None, sandbox: SandboxProvider
    ) -> VerdictDict:
        return {"passed": True, "score": 1.0, "feedback": "accepted"}

    async def averify_answer(
        self, task: Task, answer: str, *, sandbox: SandboxProvider
    ) -> VerdictDict:
        ok = answer.strip() == str(task["reference_solution"]).strip()
        return {"passed": ok, "score": float(ok), "feedback": "" if ok else "wrong output"}


class Clock:
    """Timestamps of every model call, to count sequential stages afterwards."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.spans: list[tuple[float, float]] = []

    def mark(self) -> None:
        end = time.perf_counter()  # the responder runs right after the scripted sleep
        self.spans.append((end - self.delay, end))

    def stages(self) -> int:
        count, frontier = 0, float("-inf")
        for start, end in sorted(self.spans):
            if start >= frontier - 1e-3:
                count += 1
                frontier = end
            else:
                frontier = max(frontier, end)
        return count


def entry_of(messages: list[BaseMessage]) -> str:
    found = re.findall(r"def\s+([A-Za-z_]\w*)\s*\(", str(messages[-1].content))
    return found[0] if found else ""


def models(clock: Clock, generated: list[dict[str, Any]]) -> dict[str, ScriptedChatModel]:
    queue = list(generated)

    def fence(code: str) -> str:
        return f"```python\n{code}```"

    def learner(messages: list[BaseMessage]) -> str:
        clock.mark()
        entry = entry_of(messages)
        good = "FIX" in str(messages[0].content)
        return fence(
            BY_NAME[entry]["reference_solution"] if good else f"def {entry}(*a):\n    return None\n"
        )

    def checker(messages: list[BaseMessage]) -> str:
        clock.mark()
        return fence(BY_NAME[entry_of(messages)]["reference_solution"])

    def generator(_messages: list[BaseMessage]) -> dict[str, Any]:
        clock.mark()
        task = queue.pop(0)
        keys = ("prompt", "entry_point", "reference_solution", "tests", "weakness")
        return {k: task[k] for k in keys}

    script: Iterator[dict[str, Any]] = iter(
        [
            {"failure_modes": [{"pattern": "returns None"}]},
            {"recommendations": ["implement the function"]},
            {"prompt": "Implement every function fully. FIX"},
        ]
    )

    def optimizer(_messages: list[BaseMessage]) -> dict[str, Any]:
        clock.mark()
        return next(script)

    d = clock.delay
    return {
        "model": ScriptedChatModel(responder=learner, delay_s=d, name="learner"),
        "generator_model": ScriptedChatModel(responder=generator, delay_s=d, name="generator"),
        "checker_model": ScriptedChatModel(responder=checker, delay_s=d, name="checker"),
        "optimizer_model": ScriptedChatModel(responder=optimizer, delay_s=d, name="optimizer"),
    }


async def run_once(delay: float, tasks: int, real: bool) -> dict[str, Any]:
    clock = Clock(delay)
    seeds, generated = SEEDS[:tasks], SEEDS[tasks : 2 * tasks]
    kw: dict[str, Any] = models(clock, generated)
    sandbox = None
    if real:
        from sipdo.sandbox.process import ProcessSandbox

        sandbox = ProcessSandbox()
    graph = create_sipdo_graph(
        kw.pop("model"),
        **kw,
        domain=CodeDomain() if real else InstantDomain(),
        strategy="sipdo",  # the scripted optimizer answers the sipdo strategy's three requests
        sandbox=sandbox,
        budget=Budget(iterations=1, tasks_per_iteration=len(generated)),
    )
    started = time.perf_counter()
    out = await graph.ainvoke({"prompt": "Write Python.", "seed_tasks": seeds})
    wall = time.perf_counter() - started
    if sandbox is not None:
        sandbox.close()
    critical = clock.stages() * delay
    return {
        "wall_s": wall,
        "critical_path_s": critical,
        "stages": clock.stages(),
        "model_calls": len(clock.spans),
        "ratio": wall / critical,
        "sandbox_s": out["budget_used"]["sandbox_seconds"],
        "best_prompt": out["best_prompt"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--tasks", type=int, default=4, help="seed tasks and generated tasks")
    parser.add_argument("--real", action="store_true", help="grade with the real verifiers")
    args = parser.parse_args()
    if not 1 <= args.tasks <= len(SEEDS) // 2:
        parser.error(f"--tasks must be within 1..{len(SEEDS) // 2}")
    r = asyncio.run(run_once(args.delay, args.tasks, args.real))
    mode = "real verifiers + ProcessSandbox" if args.real else "instant in-process grading"
    print(f"grading:        {mode}")
    print(f"model calls:    {r['model_calls']} ({args.delay * 1000:.0f} ms each)")
    print(f"stages:         {r['stages']} sequential model-call stages")
    print(f"wall time:      {r['wall_s']:.3f} s")
    print(f"critical path:  {r['critical_path_s']:.3f} s")
    print(f"ratio:          {r['ratio']:.2f} (target <= 1.2)")
    print(f"sandbox time:   {r['sandbox_s']:.2f} s (summed over parallel verifications)")
    if "FIX" not in r["best_prompt"]:
        raise SystemExit("the iteration did not accept the refined prompt; the run is not typical")


if __name__ == "__main__":
    main()
