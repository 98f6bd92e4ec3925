"""The HTTP app LangGraph Server mounts beside its own API (``http.app`` in ``langgraph.json``).

It adds three things to the server:

* a lifespan: at start the runtime refuses a deployment without a model, resolves
  the default models and opens the process's one sandbox; at stop it closes the
  sandbox (no container outlives a server that was stopped);
* ``SettingsCheck``, a middleware that rejects bad sipdo settings in a request
  that creates or updates an assistant or starts a run, with ``422`` and a
  ``detail`` naming each bad setting, before anything is queued; and that gives
  a resuming run (``command.resume``) the settings of the run it resumes;
* ``GET /sipdo/status``: the sandbox, how many were opened, the graphs built and
  the default models of this process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid5

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sipdo.errors import ConfigurationError
from sipdo.serve.config import FIELDS, ROLE_FIELDS, ServeConfig, parse_config
from sipdo.serve.runtime import get_runtime

log = logging.getLogger("sipdo.serve")

GRAPH_IDS = frozenset({"sipdo"})
# LangGraph Server names a graph's default assistant uuid5(NAMESPACE_GRAPH, graph_id).
NAMESPACE_GRAPH = UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")

_RUNS = re.compile(r"^(/threads/[^/]+)?/runs(/stream|/wait)?$")
_ASSISTANT = re.compile(r"^/assistants(/[^/]+)?$")


def check_settings(config: ServeConfig) -> None:
    """What the factory would refuse, without building anything: models allowed on
    this server, and registered domain, strategy and gate names."""
    from sipdo.plugins.optimizers.gates import resolve_gate
    from sipdo.plugins.registry import load

    runtime = get_runtime()
    for role in ROLE_FIELDS:
        runtime.settings.model_for(role, config)
    load("sipdo.domains", config.domain or runtime.settings.domain)
    load("sipdo.optimizers", config.strategy or runtime.settings.strategy)
    resolve_gate(config.gate)
    config.budget.to_budget()
    if config.holdout is not None:
        from sipdo.evaluation import holdout_tasks

        holdout_tasks(config.holdout)  # an unknown benchmark is refused before a run


def _ours_by_name(ref: Any) -> bool | None:
    """Whether a graph id / assistant id names a sipdo graph, from the name alone
    (None: an assistant created through the API, to look up)."""
    if not isinstance(ref, str):
        return None
    if ref in GRAPH_IDS:
        return True
    try:
        uid = UUID(ref)
    except ValueError:
        return False  # another graph's name
    if any(uid == uuid5(NAMESPACE_GRAPH, g) for g in GRAPH_IDS):
        return True
    return None


def problems(body: Any, *, ours: bool | None) -> str | None:
    """The bad sipdo settings in a request body, or None.

    ``ours``: the request is for a sipdo graph (None: it could not be told). Its
    ``context`` must hold settings only (the server would drop an unknown key
    without a word); ``config.configurable`` also carries the server's own keys,
    so only the sipdo settings in it are checked.
    """
    if not isinstance(body, dict) or ours is False:
        return None
    try:
        context = body.get("context")
        if isinstance(context, dict) and context:
            check_settings(parse_config(context, strict=ours is True))
        configurable = (body.get("config") or {}).get("configurable")
        if isinstance(configurable, dict) and configurable:
            check_settings(parse_config(configurable))
    except ConfigurationError as exc:
        return str(exc)
    return None


class SettingsCheck:
    """Pure ASGI middleware: a bad sipdo setting in a run or assistant request -> 422;
    a resume carries the paused run's settings (``_paused_settings``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PATCH"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        runs, assistant = _RUNS.match(path), _ASSISTANT.match(path)
        if not runs and not assistant:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        try:
            body = json.loads(b"".join(chunks) or b"null")
        except ValueError:
            body = None  # the server answers malformed JSON itself
        if isinstance(body, dict):
            if runs:
                ours = await self._ours(scope, body.get("assistant_id"))
            elif scope["method"] == "POST" and assistant and assistant.group(1) is None:
                ours = _ours_by_name(body.get("graph_id"))
            elif scope["method"] == "PATCH" and assistant and assistant.group(1):
                ours = await self._ours(scope, assistant.group(1)[1:])
            else:  # /assistants/search, /assistants/count
                ours = False
            detail = await asyncio.to_thread(problems, body, ours=ours)
            if detail is not None:
                response = JSONResponse({"detail": detail}, status_code=422)
                await response(scope, receive, send)
                return
            resume = (body.get("command") or {}).get("resume") if runs else None
            if runs and runs.group(1) and resume is not None and ours is not False:
                body = await self._paused_settings(scope, runs.group(1), body)
                raw = json.dumps(body).encode()
                messages = [{"type": "http.request", "body": raw, "more_body": False}]
                headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
                scope = {**scope, "headers": [*headers, (b"content-length", b"%d" % len(raw))]}

        replay = iter(messages)

        async def replayed() -> Message:
            try:
                return next(replay)
            except StopIteration:
                return await receive()

        await self.app(scope, replayed, send)

    async def _get(self, scope: Scope, path: str, **params: Any) -> Any:
        """``GET path`` on the server's own API, in process, with the caller's
        credentials; the JSON answer, or None when it is not a 200."""
        keep = (b"authorization", b"x-api-key", b"cookie")
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.lower() in keep]
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sipdo.internal") as http:
            response = await http.get(path, params=params, headers=headers)
        return response.json() if response.status_code == 200 else None

    async def _ours(self, scope: Scope, ref: Any) -> bool | None:
        """Whether the assistant ``ref`` (id or graph name) serves a sipdo graph."""
        by_name = _ours_by_name(ref)
        if by_name is not None or not isinstance(ref, str):
            return by_name
        found = await self._get(scope, f"/assistants/{ref}")
        return None if not isinstance(found, dict) else found.get("graph_id") in GRAPH_IDS

    async def _paused_settings(
        self, scope: Scope, thread: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """``body`` (a resume) with the sipdo settings of the thread's last run beneath its
        own: a resumed run is built as the paused one was (the approval it answers is
        only asked with ``approve_prompts``, and its models and budget carry on), even
        when the client sends only the answer."""
        found = await self._get(scope, f"{thread}/runs", limit=1, select=["kwargs"])
        if not found:
            return body  # the server answers an unknown thread itself
        kwargs = found[0].get("kwargs") or {}
        last = ((kwargs.get("config") or {}).get("configurable") or {}) | (
            kwargs.get("context") or {}
        )
        settings = {k: v for k, v in last.items() if k in FIELDS}
        configurable = (body.get("config") or {}).get("configurable")
        if isinstance(configurable, dict) and configurable:
            body["config"]["configurable"] = settings | configurable
        else:
            body["context"] = settings | (body.get("context") or {})
        return body


async def status(request: Request) -> JSONResponse:
    return JSONResponse(get_runtime().status())


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    runtime = get_runtime()
    await asyncio.to_thread(runtime.start)  # ConfigurationError: the server does not start
    log.info("sipdo serve: ready (%s)", runtime.status())
    try:
        yield
    finally:
        await asyncio.to_thread(runtime.close)


app = Starlette(
    routes=[Route("/sipdo/status", status)],
    middleware=[Middleware(SettingsCheck)],
    lifespan=lifespan,
)
