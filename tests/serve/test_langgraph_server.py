"""sipdo served by a real ``langgraph dev`` (in-memory runtime) in a subprocess, driven
over HTTP with ``langgraph_sdk``.

The roles are ``ScriptedChatModel``s behind an OpenAI-compatible loopback server
(``scripted_server``), reached through the real openai client; each run names
its own. Code is graded by the real verifiers in the server's one process sandbox.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import BaseMessage
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import UnprocessableEntityError

from sipdo.testing import ScriptedChatModel
from tests.graph import world
from tests.serve.scripted_server import ScriptedOpenAI, scripted_openai

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
LANGGRAPH = Path(sys.executable).with_name("langgraph")
INITIAL = "You write Python functions."
SEED = [world.SEEDS["chunk"]]  # the scripted learner fails it unless its prompt says FIX
ONE_STEP = {"iterations": 1, "tasks_per_iteration": 1, "max_refinements": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``langgraph dev`` serving the repository's ``langgraph.json`` from ``workdir``
    (its ``.langgraph_api`` persistence lives there, kept across restarts)."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "server.log"
        config = json.loads((ROOT / "langgraph.json").read_text())
        config["dependencies"] = [str(ROOT)]
        config["graphs"] = {k: str(ROOT / v) for k, v in config["graphs"].items()}
        config["http"]["app"] = str(ROOT / config["http"]["app"])
        # langgraph dev writes its in-memory checkpoints only at a clean stop: keep
        # them in SQLite so a killed server resumes its threads (README).
        config["checkpointer"] = {"path": f"{ROOT}/sipdo/serve/checkpoint.py:checkpointer"}
        (workdir / "langgraph.json").write_text(json.dumps(config))

    def start(self) -> None:
        cmd = [str(LANGGRAPH), "dev", "--config", "langgraph.json", "--port", str(self.port)]
        cmd += ["--no-browser", "--no-reload", "--n-jobs-per-worker", "4"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/ok", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"server did not answer in 90 s:\n{self.tail()}")

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        """SIGINT, as Ctrl-C in ``langgraph dev``; the lifespan shuts down."""
        assert self.proc is not None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        return int(self.proc.returncode)

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def client(self) -> LangGraphClient:
        return get_client(url=self.url)


def _server_env(models: ScriptedOpenAI) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIPDO_", "OPENAI_"))}
    env |= {
        "PYTHONPATH": str(ROOT),
        "SIPDO_MODEL": f"openai:learner@{models.url}",
        "SIPDO_CHECKER_MODEL": f"openai:checker@{models.url}",
        "SIPDO_SERVE_MODELS": f"openai:*@{models.url}",
        "SIPDO_SANDBOX": "process",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
    }
    return env


def _garbage(messages: list[BaseMessage]) -> str:
    return "I would rather not write a task today."


@pytest.fixture(scope="module")
def models() -> Iterator[ScriptedOpenAI]:
    with scripted_openai() as server:
        server.add("learner", world.learner_model(always=["rotate_left"]))
        server.add("checker", world.checker_model())
        server.add("gen-none", ScriptedChatModel(responder=_garbage, name="gen-none"))
        server.add("gen-clamp", ScriptedChatModel(responder=lambda m: world.CLAMP))
        yield server


@pytest.fixture(scope="module")
def server(models: ScriptedOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("langgraph"), _server_env(models))
    srv.start()
    yield srv
    srv.stop()


def optimizer(models: ScriptedOpenAI, name: str, prompt: str) -> str:
    """A fresh scripted optimizer proposing ``prompt``; returns its spec."""
    return models.add(name, ScriptedChatModel(world.optimizer_script(prompt), name=name))


async def stream(client: LangGraphClient, thread_id: str, assistant: str, **kw: Any) -> Any:
    """Stream one run; (custom events, last values, error payloads)."""
    events: list[dict[str, Any]] = []
    values: dict[str, Any] = {}
    errors: list[Any] = []
    async for part in client.runs.stream(
        thread_id, assistant, stream_mode=["custom", "values"], **kw
    ):
        if part.event == "custom":
            events.append(part.data)
        elif part.event == "values":
            values = part.data
        elif part.event == "error":
            errors.append(part.data)
    return events, values, errors


async def test_schemas_show_input_output_and_settings(server: Server) -> None:
    client = server.client()
    [assistant] = await client.assistants.search(
        graph_id="sipdo", metadata={"created_by": "system"}
    )
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    assert {"prompt", "seed_tasks"} <= set(schemas["input_schema"]["properties"])
    assert {"best_prompt", "accepted_tasks", "history"} <= set(
        schemas["output_schema"]["properties"]
    )
    context = schemas["context_schema"]
    assert {"model", "budget", "approve_prompts", "gate"} <= set(context["properties"])


async def test_streamed_run_with_per_assistant_models(
    server: Server, models: ScriptedOpenAI
) -> None:
    client = server.client()
    assistant = await client.assistants.create(
        "sipdo",
        context={
            "generator_model": f"openai:gen-clamp@{models.url}",
            "optimizer_model": optimizer(models, "opt-main", "Be exact. FIX"),
            "budget": ONE_STEP,
        },
    )
    thread = await client.threads.create()
    events, values, errors = await stream(
        client,
        thread["thread_id"],
        assistant["assistant_id"],
        input={"prompt": INITIAL, "seed_tasks": SEED},
    )
    assert errors == []
    assert values["best_prompt"] == "Be exact. FIX"
    assert values["stop_reason"] == "iterations"
    assert [t["entry_point"] for t in values["accepted_tasks"]] == ["clamp"]
    kinds = {e["event"] for e in events}
    assert {"budget", "task_verdict", "learner_result", "prompt_candidate", "run_end"} <= kinds
    assert models.calls("opt-main") == 3
    run = (await client.runs.list(thread["thread_id"]))[0]
    assert run["status"] == "success"


async def test_two_concurrent_runs_configured_per_run(
    server: Server, models: ScriptedOpenAI
) -> None:
    client = server.client()
    threads = [(await client.threads.create())["thread_id"] for _ in range(2)]
    runs = []
    for n, thread_id in enumerate(threads):
        context = {
            "generator_model": f"openai:gen-none@{models.url}",
            "optimizer_model": optimizer(models, f"opt-{n}", f"Variant {n}. FIX"),
            "budget": ONE_STEP,
        }
        runs.append(
            await client.runs.create(
                thread_id, "sipdo", input={"prompt": INITIAL, "seed_tasks": SEED}, context=context
            )
        )
    finals = [await client.runs.join(t, r["run_id"]) for t, r in zip(threads, runs, strict=True)]
    assert [f["best_prompt"] for f in finals] == ["Variant 0. FIX", "Variant 1. FIX"]
    # A run's own budget is honoured: one model call, then the run stops.
    thread_id = (await client.threads.create())["thread_id"]
    _, values, _ = await stream(
        client,
        thread_id,
        "sipdo",
        input={"prompt": INITIAL, "seed_tasks": SEED},
        context={"budget": {"model_calls": 1}},
    )
    assert values["stop_reason"] == "budget:model_calls"
    assert sum(values["budget_used"]["model_calls"].values()) == 1
    async with httpx.AsyncClient() as http:
        status = (await http.get(f"{server.url}/sipdo/status")).json()
    assert status["sandboxes_opened"] == 1  # every run so far shared the one sandbox


async def test_bad_settings_and_bad_input_reach_the_client(server: Server) -> None:
    client = server.client()
    thread_id = (await client.threads.create())["thread_id"]
    with pytest.raises(UnprocessableEntityError) as bad:
        await client.runs.create(
            thread_id, "sipdo", input={"prompt": INITIAL}, context={"budget": {"iterations": 0}}
        )
    assert "budget.iterations: Input should be greater than or equal to 1" in str(bad.value.body)
    with pytest.raises(UnprocessableEntityError, match="not allowed on this server"):
        await client.assistants.create(
            "sipdo", context={"model": "openai:gpt-4o@https://elsewhere.example/v1"}
        )
    _, _, errors = await stream(client, thread_id, "sipdo", input={"prompt": "  "})
    assert errors == [
        {
            "error": "ConfigurationError",
            "message": "input state needs a non-empty 'prompt' string",
        }
    ]
    run = (await client.runs.list(thread_id))[0]
    assert run["status"] == "error"


async def _until_approval(
    client: LangGraphClient, assistant_id: str, optimizer_spec: str
) -> tuple[str, dict[str, Any]]:
    """Start a run that pauses for approval; (thread id, interrupt payload)."""
    thread_id = (await client.threads.create())["thread_id"]
    _, _, errors = await stream(
        client,
        thread_id,
        assistant_id,
        input={"prompt": INITIAL, "seed_tasks": SEED},
        context={"optimizer_model": optimizer_spec},
    )
    assert errors == []
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["approve"]
    [interrupt] = state["tasks"][0]["interrupts"]
    return thread_id, interrupt["value"]


@pytest.fixture(scope="module")
def approving(server: Server, models: ScriptedOpenAI) -> str:
    """An assistant that asks before promoting a prompt."""
    assistant = get_sync_client(url=server.url).assistants.create(
        "sipdo",
        context={
            "approve_prompts": True,
            "generator_model": f"openai:gen-none@{models.url}",
            "budget": ONE_STEP,
        },
    )
    return str(assistant["assistant_id"])


@pytest.mark.parametrize(("answer", "accepted"), [({"approved": False}, False), (True, True)])
async def test_approval_over_the_api(
    server: Server, models: ScriptedOpenAI, approving: str, answer: Any, accepted: bool
) -> None:
    client = server.client()
    spec = optimizer(models, f"opt-approve-{accepted}", f"Reviewed {accepted}. FIX")
    thread_id, payload = await _until_approval(client, approving, spec)
    assert payload["kind"] == "approve_prompt"
    assert payload["current"] == INITIAL
    assert payload["candidate"] == f"Reviewed {accepted}. FIX"
    assert payload["fixed"] == [SEED[0]["id"]]
    _, values, errors = await stream(client, thread_id, approving, command={"resume": answer})
    assert errors == []
    assert values["best_prompt"] == (f"Reviewed {accepted}. FIX" if accepted else INITIAL)
    [attempt] = [h for h in values["history"] if h["kind"] == "prompt_attempt"]
    assert attempt["accepted"] is accepted
    if not accepted:
        assert attempt["reason"] == "rejected by the reviewer"


async def test_killed_server_resumes_the_thread_from_its_checkpoint(
    server: Server, models: ScriptedOpenAI, approving: str
) -> None:
    client = server.client()
    spec = optimizer(models, "opt-restart", "Survived. FIX")
    thread_id, payload = await _until_approval(client, approving, spec)
    assert payload["candidate"] == "Survived. FIX"
    await asyncio.sleep(11)  # the in-memory runtime writes .langgraph_api every 10 s
    server.kill()
    server.start()
    client = server.client()
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["approve"]
    assert state["tasks"][0]["interrupts"][0]["value"]["candidate"] == "Survived. FIX"
    _, values, errors = await stream(
        client, thread_id, approving, command={"resume": {"approved": True}}
    )
    assert errors == []
    assert values["best_prompt"] == "Survived. FIX"
    assert models.calls("opt-restart") == 3  # nothing before the interrupt ran again
    assert server.stop() == 0
    assert "sipdo serve: sandbox closed" in server.log.read_text()
