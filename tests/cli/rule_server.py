"""An OpenAI-compatible model server, run as its own process, that answers from rule files.

``python -m tests.cli.rule_server PORT DIR`` serves ``POST /v1/chat/completions``:
the request's ``model`` names the rule file ``DIR/<model>.json`` (the scripts of
``tests.cli.scriptworld``, read with ``sipdo.cli.scripted``), so each role of a
real ``sipdo run --model openai:learner@http://127.0.0.1:PORT/v1`` gets the same
answers a ``scripted:`` run gets. Being a real process, tests can SIGKILL it (a
dead server), SIGSTOP it (a server that accepts connections and never answers)
and start it again on the same port. Each answered request appends its model
name to ``DIR/served.log``. Prints ``ready`` once listening.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from sipdo.cli.scripted import load_scripted


def serve(port: int, directory: Path) -> None:
    models: dict[str, BaseChatModel] = {}

    def answer(body: dict[str, Any]) -> str:
        name = str(body["model"])
        if name not in models:
            models[name] = load_scripted(f"scripted:{directory / name}.json")
        messages: list[BaseMessage] = []
        for m in body["messages"]:
            kind = {"system": SystemMessage, "assistant": AIMessage}.get(m["role"], HumanMessage)
            messages.append(kind(content=m["content"]))
        reply = models[name].invoke(messages)
        return str(reply.content)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            payload = json.dumps(
                {
                    "id": "chatcmpl-rules",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": answer(body)},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            with (directory / "served.log").open("a") as log:
                log.write(f"{body['model']}\n")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
