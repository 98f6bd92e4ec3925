"""An OpenAI-compatible HTTP server (stdlib, own thread) whose replies come from
``ScriptedChatModel``s: the model named in a request answers it.

The served graph reaches it as ``openai:<name>@<url>``, through the real openai
client, so each run can be given its own scripted models by name. Streaming
requests (``"stream": true``) get one content chunk and ``[DONE]``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from sipdo.testing import ScriptedChatModel

_ROLES: dict[str, type[BaseMessage]] = {
    "system": SystemMessage,
    "developer": SystemMessage,
    "user": HumanMessage,
    "assistant": AIMessage,
}


def _message(raw: dict[str, Any]) -> BaseMessage:
    content = raw.get("content") or ""
    if isinstance(content, list):
        content = "".join(str(part.get("text", "")) for part in content)
    return _ROLES.get(raw.get("role", "user"), HumanMessage)(content=content)


class ScriptedOpenAI:
    """Model name -> scripted model; every request is kept (name, messages)."""

    def __init__(self) -> None:
        self.models: dict[str, ScriptedChatModel] = {}
        self.requests: list[tuple[str, list[BaseMessage]]] = []
        self.lock = threading.Lock()
        self.url = ""

    def add(self, name: str, model: ScriptedChatModel) -> str:
        """Serve ``model`` as ``name``; returns the spec naming it (``openai:name@url``)."""
        self.models[name] = model
        return f"openai:{name}@{self.url}"

    def calls(self, name: str) -> int:
        with self.lock:
            return sum(1 for n, _ in self.requests if n == name)

    def reply(self, body: dict[str, Any]) -> tuple[int, str]:
        name = str(body.get("model", ""))
        messages = [_message(m) for m in body.get("messages", [])]
        with self.lock:
            self.requests.append((name, messages))
        model = self.models.get(name)
        if model is None:
            return 404, json.dumps({"error": {"message": f"no model {name!r}", "type": "nf"}})
        try:
            text = str(model.invoke(messages).content)
        except Exception as exc:  # a run out script: the client sees a server error
            return 500, json.dumps({"error": {"message": str(exc), "type": "script"}})
        return 200, text


def _completion(name: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": name,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def _chunks(name: str, text: str) -> Iterator[bytes]:
    base = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "model": name}
    for delta, finish in (({"role": "assistant", "content": text}, None), ({}, "stop")):
        chunk = {
            **base,
            "created": int(time.time()),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def _handler(state: ScriptedOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            status, text = state.reply(body)
            name = str(body.get("model", ""))
            if status != 200:
                payload = text.encode()
            elif body.get("stream"):
                payload = b"".join(_chunks(name, text))
            else:
                payload = json.dumps(_completion(name, text)).encode()
            self.send_response(status)
            kind = (
                "text/event-stream" if body.get("stream") and status == 200 else "application/json"
            )
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@contextmanager
def scripted_openai() -> Iterator[ScriptedOpenAI]:
    """Serve on a free loopback port for the duration of the block."""
    state = ScriptedOpenAI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
