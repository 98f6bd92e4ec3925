"""Task domains: the ``Domain`` protocol and the built-in ``code`` domain."""

from __future__ import annotations

from sipdo.plugins.domains.base import Domain, SandboxProvider, Task, VerdictDict

__all__ = ["Domain", "SandboxProvider", "Task", "VerdictDict"]
