"""Who is running a run: a killed ``sipdo run`` leaves its run ``running`` in the
store; the owner recorded at start (host, pid, the process's start time) tells
``sipdo runs`` / ``show`` that it is in fact interrupted."""

from __future__ import annotations

import os
import socket
from typing import Any

from sipdo.store.records import RunRecord


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    try:
        return int(fields[19])  # field 22 of stat(5), counted after "pid (comm)"
    except (IndexError, ValueError):
        return None


def this_process() -> dict[str, Any]:
    """The owner record of the current process."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_ticks(os.getpid())}


def alive(owner: Any) -> bool | None:
    """Whether ``owner`` still runs: None when that cannot be told from here (another
    host, or no usable record)."""
    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return None
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    start = _start_ticks(pid)
    return start is not None and (owner.get("start") is None or start == owner.get("start"))


def shown_status(run: RunRecord) -> str:
    """``interrupted`` for a ``running`` run whose process is gone, else the status."""
    if run.status == "running" and alive(run.config.get("owner")) is False:
        return "interrupted"
    return run.status
