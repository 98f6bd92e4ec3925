"""A real HTTP server (stdlib, own thread) that speaks the OpenAI chat API badly on cue.

Each request takes the next mode from ``faults`` (then ``"ok"`` forever):
``"500"`` answers an internal error, ``"garbage"`` a 200 whose body is not JSON,
``"no_choices"`` a 200 JSON without ``choices``, ``"429"`` a rate limit whose
``Retry-After`` is ``retry_after`` seconds, ``"401"`` a bad key, ``"hang"`` reads the
request and never answers (until the server stops), ``"drop"`` closes the
connection without a word. With ``json_object_only`` a request
for ``"json_schema"`` output gets a 422, as llama-cpp-python's server answers.
``"ok"`` answers through ``upstream``: a base URL to proxy to (a real model server), or else a small
well-formed completion echoing the last user message. Every request body is kept.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FlakyServer:
    """State shared with the handler: the fault script and what was received."""

    def __init__(
        self,
        faults: list[str],
        upstream: str | None = None,
        content: str = "",
        json_object_only: bool = False,
        retry_after: str = "1",
    ) -> None:
        self.faults = list(faults)
        self.retry_after = retry_after
        self.stopping = threading.Event()
        self.json_object_only = json_object_only
        self.upstream = upstream
        self.content = content
        self.requests: list[dict[str, Any]] = []
        self.modes: list[str] = []
        self.lock = threading.Lock()
        self.url = ""

    def next_mode(self, body: dict[str, Any]) -> str:
        with self.lock:
            self.requests.append(body)
            wants_schema = (body.get("response_format") or {}).get("type") == "json_schema"
            if self.json_object_only and wants_schema:
                mode = "422"  # like llama-cpp-python's server: only json_object + schema
            else:
                mode = self.faults.pop(0) if self.faults else "ok"
            self.modes.append(mode)
            return mode

    def answer(self, raw: bytes, body: dict[str, Any]) -> bytes:
        if self.upstream:
            request = urllib.request.Request(
                self.upstream.rstrip("/") + "/chat/completions",
                data=raw,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=300) as response:
                return bytes(response.read())
        last = body["messages"][-1]["content"]
        text = self.content or f"echo: {last}"
        return json.dumps(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "m"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            }
        ).encode()


def _handler(state: FlakyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = json.loads(raw)
            mode = state.next_mode(body)
            status, payload = 200, b""
            headers = {"retry-after-ms": "20"}  # keep the client's backoff short
            if mode == "hang":
                state.stopping.wait()
                return
            if mode == "drop":
                self.close_connection = True
                return
            if mode == "429":
                status, payload = 429, b'{"error": {"message": "slow down", "type": "rate_limit"}}'
                headers = {"retry-after": state.retry_after}
            elif mode == "401":
                status, payload = 401, b'{"error": {"message": "bad key", "type": "auth"}}'
            elif mode == "500":
                status, payload = 500, b'{"error": {"message": "boom", "type": "server_error"}}'
            elif mode == "422":
                status, payload = 422, b'{"detail": "response_format.type: json_object only"}'
            elif mode == "garbage":
                payload = b"<html>this is not json"
            elif mode == "no_choices":
                payload = b'{"id": "x", "object": "chat.completion", "created": 1, "model": "m"}'
            else:
                payload = state.answer(raw, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@contextmanager
def flaky_server(
    faults: list[str],
    *,
    upstream: str | None = None,
    content: str = "",
    json_object_only: bool = False,
    retry_after: str = "1",
    port: int = 0,
) -> Iterator[FlakyServer]:
    """Run a ``FlakyServer`` on localhost (a free port unless given); ``state.url`` is its
    ``/v1`` base."""
    state = FlakyServer(faults, upstream, content, json_object_only, retry_after)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
