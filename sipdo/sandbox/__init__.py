"""Hardened execution of untrusted code: Docker containers or a process fallback."""

from __future__ import annotations

from sipdo.sandbox.base import ISOLATION_VOCABULARY, ExecResult, Job, Limits, Sandbox

__all__ = [
    "ISOLATION_VOCABULARY",
    "DockerSandbox",
    "ExecResult",
    "Job",
    "Limits",
    "ProcessSandbox",
    "Sandbox",
    "open_sandbox",
]


def __getattr__(name: str) -> object:
    # Backends load lazily: the Docker SDK is only imported when asked for.
    if name == "DockerSandbox":
        from sipdo.sandbox.docker import DockerSandbox

        return DockerSandbox
    if name == "ProcessSandbox":
        from sipdo.sandbox.process import ProcessSandbox

        return ProcessSandbox
    if name == "open_sandbox":
        from sipdo.sandbox.factory import open_sandbox

        return open_sandbox
    raise AttributeError(f"module 'sipdo.sandbox' has no attribute {name!r}")
