"""Task domains: the ``Domain`` protocol, ``BaseDomain`` with its defaults, and the
built-in ``code``, ``plan`` and ``qa`` domains (registered as ``sipdo.domains``)."""

from __future__ import annotations

from sipdo.plugins.domains.base import BaseDomain, Domain, SandboxProvider, Task, VerdictDict

__all__ = ["BaseDomain", "Domain", "SandboxProvider", "Task", "VerdictDict"]
