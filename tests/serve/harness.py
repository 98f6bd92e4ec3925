"""Running ``langgraph dev`` on the repository's ``langgraph.json`` in a subprocess, and
the client-side helpers the serving tests share."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from langchain_core.messages import BaseMessage
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from sipdo.testing import ScriptedChatModel
from tests.graph import world
from tests.serve.scripted_server import ScriptedOpenAI

ROOT = Path(__file__).resolve().parents[2]
LANGGRAPH = Path(sys.executable).with_name("langgraph")
INITIAL = "You write Python functions."
# The scripted learner fails these five unless its prompt says FIX: five fixes and no loss
# is what the default (statistical) gate needs to promote (one-sided sign test, p = 1/32).
SEED = [
    world.SEEDS[name]
    for name in ("chunk", "run_length_encode", "is_balanced", "second_largest", "merge_intervals")
]
ONE_STEP = {"iterations": 1, "tasks_per_iteration": 1, "max_refinements": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``langgraph dev`` serving the repository's ``langgraph.json`` from ``workdir``
    (its ``.langgraph_api`` persistence lives there, kept across restarts)."""

    def __init__(self, workdir: Path, env: dict[str, str], *, jobs: int = 4) -> None:
        self.workdir = workdir
        self.jobs = jobs
        self.env = env
        self.port = free_port()
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
        cmd += ["--no-browser", "--no-reload", "--n-jobs-per-worker", str(self.jobs)]
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

    def wait_flushed(self, since: float, timeout: float = 20) -> None:
        """Until the in-memory runtime has written its threads and runs (every 10 s)
        after ``since`` (a ``time.time()``)."""
        ops = self.workdir / ".langgraph_api" / ".langgraph_ops.pckl"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ops.exists() and ops.stat().st_mtime > since:
                return
            time.sleep(0.25)
        raise AssertionError(f"{ops} not written within {timeout} s")

    def status(self) -> dict[str, Any]:
        """``GET /sipdo/status``."""
        return dict(httpx.get(f"{self.url}/sipdo/status", timeout=10).json())

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def client(self) -> LangGraphClient:
        return get_client(url=self.url)


def server_env(models: ScriptedOpenAI, sandbox: str = "process") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIPDO_", "OPENAI_"))}
    env |= {
        "PYTHONPATH": str(ROOT),
        "SIPDO_MODEL": f"openai:learner@{models.url}",
        "SIPDO_CHECKER_MODEL": f"openai:checker@{models.url}",
        "SIPDO_SERVE_MODELS": f"openai:*@{models.url}",
        "SIPDO_SANDBOX": sandbox,
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
    }
    return env


def garbage(messages: list[BaseMessage]) -> str:
    """A generator that writes no task: the loop goes straight to the optimizer."""
    return "I would rather not write a task today."


def add_roles(models: ScriptedOpenAI) -> None:
    """The scripted roles every serving test uses."""
    models.add("learner", world.learner_model(always=["rotate_left"]))
    models.add("checker", world.checker_model())
    models.add("gen-none", ScriptedChatModel(responder=garbage, name="gen-none"))
    models.add("gen-clamp", ScriptedChatModel(responder=lambda m: world.CLAMP))


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
