"""Read the last state of a run from its LangGraph SQLite checkpoint, without writing.

The run store keeps what a user queries; a few things a report wants live only in
the graph's state (the sandbox seconds spent, the difficulty asked of the generator
per iteration, held-out results the graph computed). ``sipdo run`` checkpoints next
to a SQLite store, so the report can read them there. A missing or unreadable
checkpoint is not an error: the report then says those figures were not recorded.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("sipdo.report")

CheckpointValues = Mapping[str, Any]


def read_checkpoint(path: Path, run_id: str) -> CheckpointValues | None:
    """The channel values of ``run_id``'s latest checkpoint in ``path``, or None."""
    if not path.is_file():
        return None
    from langgraph.checkpoint.sqlite import SqliteSaver

    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        log.warning("checkpoint %s not readable: %s", path, exc)
        return None
    try:
        saver = SqliteSaver(conn)
        found = saver.get_tuple({"configurable": {"thread_id": run_id, "checkpoint_ns": ""}})
    except (sqlite3.Error, ValueError, TypeError, KeyError) as exc:
        log.warning("checkpoint %s not readable: %s", path, exc)
        return None
    finally:
        conn.close()
    if found is None:
        return None
    values = found.checkpoint.get("channel_values")
    return values if isinstance(values, Mapping) else None
