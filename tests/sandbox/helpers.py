"""Helpers of the sandbox conformance suite: claim gating and host process scans."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from sipdo.sandbox import Sandbox


def require_claim(sandbox: Sandbox, claim: str) -> None:
    """Run the attack only against a backend that claims to stop it."""
    if claim not in sandbox.isolation:
        pytest.skip(f"{sandbox.kind} does not claim {claim!r}")


def marker() -> str:
    """A unique string to find a sandboxed program's processes from the host."""
    return f"sipdo-marker-{uuid.uuid4().hex}"


def host_processes_with(text: str) -> list[int]:
    """PIDs of host processes whose command line contains ``text`` (containers included)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry))
    return found


def wait_until_gone(text: str, timeout_s: float = 5.0) -> list[int]:
    """Wait for processes carrying ``text`` to disappear; return the survivors."""
    deadline = time.monotonic() + timeout_s
    while (left := host_processes_with(text)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left
