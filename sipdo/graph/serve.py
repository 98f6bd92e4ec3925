"""The graph factory LangGraph Server serves (see ``langgraph.json``).

The server calls ``make_graph(config)`` for every run, with the assistant's and
the run's settings merged into ``config["configurable"]`` (a ``context`` lands
there too). Those settings are a ``sipdo.serve.ServeConfig``: models per role,
domain, strategy, gate, seed, ``approve_prompts`` and a budget capped by default.
The server's environment gives the defaults: ``SIPDO_MODEL`` for the learner,
``SIPDO_GENERATOR_MODEL`` / ``SIPDO_CHECKER_MODEL`` / ``SIPDO_OPTIMIZER_MODEL``
for the other roles, ``SIPDO_DOMAIN``, ``SIPDO_STRATEGY``, ``SIPDO_SANDBOX``.
Every run of the process shares one sandbox and the resolved models
(``sipdo.serve.runtime``). The server brings its own checkpointer and store, so
none is compiled in. A bad setting raises ``ConfigurationError`` (a
``ValueError``, so the server shows the client its message).
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from sipdo.serve.config import parse_config
from sipdo.serve.runtime import get_runtime

Graph = CompiledStateGraph[Any, Any, Any, Any]


def build_graph(configurable: dict[str, Any] | None = None) -> Graph:
    """The served graph for these settings (blocking: may open the sandbox or load models)."""
    settings = parse_config(configurable)
    runtime = get_runtime()
    runtime.start()
    return runtime.graph(settings)


async def make_graph(config: RunnableConfig | None = None) -> Graph:
    """Build (or take from the cache) the graph for the run's settings, off the event loop."""
    configurable = dict((config or {}).get("configurable") or {})
    return await asyncio.to_thread(build_graph, configurable)
