"""The graph factory ``langgraph dev`` serves (see ``langgraph.json``).

Models come from the environment, as for the CLI: ``SIPDO_MODEL`` for the learner
and ``SIPDO_GENERATOR_MODEL`` / ``SIPDO_CHECKER_MODEL`` / ``SIPDO_OPTIMIZER_MODEL``
for the other roles (unset roles use the learner's model, or with no
``SIPDO_MODEL`` every role takes its own default). The server brings
its own checkpointer and store, so none is compiled in.
"""

from __future__ import annotations

import os
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from sipdo.graph.builder import create_sipdo_graph


def _env(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def make_graph(config: Any = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build the SIPDO graph from the environment (``config`` is LangGraph's, unused)."""
    return create_sipdo_graph(
        _env("SIPDO_MODEL"),
        generator_model=_env("SIPDO_GENERATOR_MODEL"),
        checker_model=_env("SIPDO_CHECKER_MODEL"),
        optimizer_model=_env("SIPDO_OPTIMIZER_MODEL"),
        domain=_env("SIPDO_DOMAIN") or "code",
        strategy=_env("SIPDO_STRATEGY") or "sipdo",
    )
