"""Throughput of concurrent sipdo runs on one ``langgraph dev`` server (one worker process).

Starts the server on the repository's ``langgraph.json`` with scripted roles
behind an OpenAI-compatible loopback server (each call sleeps ``--delay`` s, as a
remote API would), then for each N in ``--runs`` starts N runs on N threads at
once and waits for all. Each run is one SIPDO step on one seed task: the learner
fails it, the generator writes no task, the optimizer proposes a prompt, and the
candidate is graded; every grading is real code run in the server's one sandbox.
Prints wall time and runs per minute per N.

    PYTHONPATH=. .venv/bin/python benchmarks/serve_concurrency.py \
        [--sandbox process|docker] [--runs 1,2,4,8] [--delay 0.5] [--jobs 8]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from tests.serve.harness import INITIAL, ONE_STEP, SEED, Server, add_roles, optimizer, server_env
from tests.serve.scripted_server import ScriptedOpenAI, scripted_openai


async def batch(server: Server, models: ScriptedOpenAI, n: int, tag: str) -> float:
    client = server.client()
    threads = [(await client.threads.create())["thread_id"] for _ in range(n)]
    started = time.perf_counter()
    runs = []
    for i, thread_id in enumerate(threads):
        context = {
            "generator_model": f"openai:gen-none@{models.url}",
            "optimizer_model": optimizer(models, f"opt-{tag}-{i}", f"Run {i}. FIX"),
            "budget": ONE_STEP,
        }
        runs.append(
            await client.runs.create(
                thread_id, "sipdo", input={"prompt": INITIAL, "seed_tasks": SEED}, context=context
            )
        )
    finals = await asyncio.gather(
        *(client.runs.join(t, r["run_id"]) for t, r in zip(threads, runs, strict=True))
    )
    wall = time.perf_counter() - started
    bad = [f for f in finals if not str(f.get("best_prompt", "")).endswith("FIX")]
    if bad:
        raise SystemExit(f"{len(bad)} runs did not finish as scripted: {bad[0]}")
    return wall


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox", default="process", choices=["process", "docker"])
    parser.add_argument("--runs", default="1,2,4,8")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds per model call")
    parser.add_argument("--jobs", type=int, default=8, help="--n-jobs-per-worker")
    parser.add_argument("--pool", type=int, default=2, help="Docker warm pool size")
    args = parser.parse_args()
    with scripted_openai() as models, tempfile.TemporaryDirectory() as tmp:
        add_roles(models)
        for model in models.models.values():
            model.delay_s = args.delay
        env = server_env(models, sandbox=args.sandbox) | {"SIPDO_SANDBOX_POOL": str(args.pool)}
        server = Server(Path(tmp), env, jobs=args.jobs)
        server.start()
        try:
            await batch(server, models, 1, "warm")  # first graph build, first containers
            print(f"sandbox={args.sandbox} delay={args.delay}s jobs={args.jobs}")
            print(f"{'runs':>5} {'wall s':>8} {'runs/min':>9} {'s/run':>7}")
            for n in (int(x) for x in args.runs.split(",")):
                wall = await batch(server, models, n, f"n{n}")
                print(f"{n:>5} {wall:>8.1f} {60 * n / wall:>9.1f} {wall / n:>7.2f}")
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
