"""A real OpenAI-compatible server (llama-cpp-python's) over real HTTP (slow)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

from sipdo.plugins.models import UsageRecorder, resolve_model
from sipdo.plugins.models.openai_compat import SipdoChatOpenAI
from tests.models.conftest import _need
from tests.models.flaky_server import flaky_server

pytestmark = pytest.mark.slow
ALIAS = "qwen-0.5b"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                if ALIAS in response.read().decode():
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"llama_cpp.server not ready after {timeout_s}s")


@pytest.fixture(scope="module")
def server_url(gguf_05b: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("fastapi") is None:
        _need("llama-cpp-python[server] extras are not installed (pip install -e '.[local]')")
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_05b),
        "--model_alias", ALIAS, "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", str(os.cpu_count() or 1),
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(url, proc)
        yield url
    except (RuntimeError, TimeoutError) as exc:
        pytest.fail(f"{exc}; log:\n{log.read_text()[-3000:]}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_chat_over_http_with_real_usage(server_url: str) -> None:
    model = resolve_model(f"openai:{ALIAS}@{server_url}")
    assert isinstance(model, SipdoChatOpenAI)
    recorder = UsageRecorder()
    reply = model.invoke(
        "What is 2+2? Answer with the number only.",
        config={"callbacks": [recorder], "metadata": {"sipdo_role": "checker"}},
        max_tokens=8,
        temperature=0,
    )
    assert isinstance(reply, AIMessage)
    assert "4" in str(reply.content)
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] > 5
    assert 0 < reply.usage_metadata["output_tokens"] <= 8
    usage = recorder.snapshot()["checker"]
    assert (usage.input_tokens, usage.output_tokens) == (
        reply.usage_metadata["input_tokens"],
        reply.usage_metadata["output_tokens"],
    )


def test_json_schema_over_http(server_url: str) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
    }
    model = resolve_model(f"openai:{ALIAS}@{server_url}")
    bound = model.bind(json_schema=schema, max_tokens=16, temperature=0)
    reply = bound.invoke("What is 3+4?")
    assert isinstance(json.loads(str(reply.content))["answer"], int)
    # This server only knows {"type": "json_object", "schema": ...}; the client switched.
    assert isinstance(model, SipdoChatOpenAI)
    assert model._json_object_fallback


async def test_faults_in_front_of_the_real_server_are_survived(server_url: str) -> None:
    with flaky_server(["500", "garbage"], upstream=server_url) as proxy:
        model = resolve_model(f"openai:{ALIAS}@{proxy.url}")
        reply = await model.ainvoke("Say hello.", max_tokens=8, temperature=0)
    assert str(reply.content).strip()
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] > 0
    assert proxy.modes == ["500", "garbage", "ok"]
    assert proxy.requests[0] == proxy.requests[2]
