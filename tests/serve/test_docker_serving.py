"""A served sipdo on the Docker sandbox: two concurrent runs share the server's one warm
pool, and stopping the server removes every container it started."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from sipdo.sandbox.engine import LABEL_PID
from tests.conftest import require_docker
from tests.serve.harness import INITIAL, ONE_STEP, SEED, Server, add_roles, optimizer, server_env
from tests.serve.scripted_server import ScriptedOpenAI, scripted_openai

pytest.importorskip("langgraph_api", reason="needs the serve extra (langgraph-cli[inmem])")

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.timeout(300)]


@pytest.fixture
def models() -> Iterator[ScriptedOpenAI]:
    with scripted_openai() as server:
        add_roles(server)
        yield server


def owned(docker_client: Any, pid: int) -> list[str]:
    """Ids of the containers (running or not) the process ``pid`` started."""
    found = docker_client.api.containers(all=True, filters={"label": f"{LABEL_PID}={pid}"})
    return [c["Id"] for c in found]


async def test_runs_share_one_pool_and_stop_removes_it(
    models: ScriptedOpenAI, docker_client: Any, tmp_path: Any
) -> None:
    require_docker()
    env = server_env(models, sandbox="docker") | {"SIPDO_SANDBOX_POOL": "2"}
    server = Server(tmp_path, env)
    server.start()
    try:
        assert server.proc is not None
        pid = server.proc.pid
        client = server.client()
        threads = [(await client.threads.create())["thread_id"] for _ in range(2)]
        runs = []
        for n, thread_id in enumerate(threads):
            context = {
                "generator_model": f"openai:gen-none@{models.url}",
                "optimizer_model": optimizer(models, f"opt-docker-{n}", f"Docker {n}. FIX"),
                "budget": ONE_STEP,
            }
            run = await client.runs.create(
                thread_id, "sipdo", input={"prompt": INITIAL, "seed_tasks": SEED}, context=context
            )
            runs.append(run)
        finals = [
            await client.runs.join(t, r["run_id"]) for t, r in zip(threads, runs, strict=True)
        ]
        assert [f["best_prompt"] for f in finals] == [f"Docker {n}. FIX" for n in range(2)]
        status = await asyncio.to_thread(server.status)
        assert status["sandbox"] == "DockerSandbox"
        assert status["sandboxes_opened"] == 1
        # One sandbox's containers are all this server holds: in fork-server mode that is
        # a warm pair (pool 2) per set of limits the verifiers used (tests, reference and
        # differential runs: up to 3) plus at most 2 fresh containers for runs that came
        # before their server was ready. A sandbox per run would hold twice that.
        held = await asyncio.to_thread(owned, docker_client, pid)
        assert 1 <= len(held) <= 2 * 3 + 2
    finally:
        code = server.stop()
    assert code == 0
    assert "sipdo serve: sandbox closed" in server.log.read_text()
    assert await asyncio.to_thread(owned, docker_client, pid) == []
