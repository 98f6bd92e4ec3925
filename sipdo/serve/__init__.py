"""sipdo on LangGraph Server: per-run settings, one sandbox per process, the HTTP app.

``langgraph.json`` serves ``sipdo.graph.serve:make_graph`` and mounts
``sipdo.serve.app:app`` (lifespan, settings check, ``/sipdo/status``).
``ServeConfig`` is what an assistant or a run can set; ``ServerSettings`` what
the server's environment sets.
"""

from __future__ import annotations

from sipdo.serve.config import BudgetConfig, ServeConfig, ServerSettings, parse_config
from sipdo.serve.runtime import ServeRuntime, get_runtime, reset_runtime

__all__ = [
    "BudgetConfig",
    "ServeConfig",
    "ServeRuntime",
    "ServerSettings",
    "get_runtime",
    "parse_config",
    "reset_runtime",
]
