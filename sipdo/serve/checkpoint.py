"""A checkpointer that survives a crash of ``langgraph dev``.

``langgraph dev`` (the in-memory runtime) keeps checkpoints in memory and writes
them to ``.langgraph_api/`` only when the server stops cleanly: after a kill,
every thread restarts without its state (threads and runs themselves are written
every 10 s). Naming this factory in ``langgraph.json`` makes LangGraph Server
keep checkpoints in a SQLite file instead, written as each step ends::

    "checkpointer": {"path": "./sipdo/serve/checkpoint.py:checkpointer"}

The file is ``SIPDO_SERVE_CHECKPOINTS`` (default
``.langgraph_api/sipdo-checkpoints.sqlite`` in the server's directory). A
production deployment (LangSmith Deployment, or self-hosted with PostgreSQL)
already checkpoints durably: leave this out there.
"""

from __future__ import annotations

import os
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

DEFAULT_PATH = Path(".langgraph_api") / "sipdo-checkpoints.sqlite"


def checkpoint_path() -> Path:
    """Where the checkpoints are kept (see the module docstring)."""
    return Path(os.environ.get("SIPDO_SERVE_CHECKPOINTS", "").strip() or DEFAULT_PATH)


def checkpointer() -> AbstractAsyncContextManager[AsyncSqliteSaver]:
    """The server enters this for its lifetime and checkpoints every thread through it."""
    path = checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return AsyncSqliteSaver.from_conn_string(str(path))
