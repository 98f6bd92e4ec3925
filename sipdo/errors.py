"""The one error tree of sipdo.

A failing *candidate* (wrong code, a bad answer, a prompt that regresses) is
data, not an exception: it comes back as an ``ExecResult`` or a ``Verdict``.
The exceptions below are for the system itself failing or being misused::

    SipdoError
    ├── ConfigurationError            bad settings, arguments or budgets
    │   └── PluginError               a plugin cannot be loaded
    │       └── UnknownPluginError    no plugin of that name (lists the known ones)
    ├── SandboxError
    │   ├── SandboxUnavailableError   no engine / image / kernel feature
    │   ├── SandboxTimeoutError       the sandbox itself did not answer in time
    │   ├── SandboxResourceError      the host ran out of something it needs
    │   └── SandboxInputError         bad file names, empty command, bad text
    ├── VerificationError             the verification harness itself failed
    ├── ModelError
    │   ├── ModelUnavailableError     backend missing, server down, weights absent
    │   │   └── ModelBackendDownError still down / hung / rate-limited after the retries
    │   ├── ModelOutputError          output still unusable after the retries
    │   └── ScriptExhaustedError      a ScriptedChatModel ran out of responses
    ├── StoreError
    │   ├── RunNotFoundError          no run with that id
    │   └── StoreUnavailableError     database down, locked or its disk full, after the retries
    └── RunStoppedError               a run stopped on an infrastructure fault; resumable

Third-party errors (docker, SQLAlchemy, openai, llama.cpp) are mapped at the
boundary with ``raise ... from exc`` so callers catch one tree.
"""

from __future__ import annotations


class SipdoError(Exception):
    """Root of every error sipdo raises on purpose."""


class ConfigurationError(SipdoError, ValueError):
    """A setting, argument or budget is invalid.

    Also a ``ValueError``: servers that show a client only the text of errors the
    client caused (LangGraph Server passes ``ValueError`` through) show this one.
    """


class PluginError(ConfigurationError):
    """A plugin could not be loaded or does not implement its protocol."""


class UnknownPluginError(PluginError):
    """No plugin of the requested name; the message lists the available ones."""

    def __init__(self, group: str, name: str, available: list[str]) -> None:
        self.group = group
        self.name = name
        self.available = sorted(available)
        names = ", ".join(self.available) or "(none)"
        super().__init__(f"unknown {group} {name!r}; available: {names}")


class SandboxError(SipdoError):
    """The sandbox failed as a system (not: the code it ran failed)."""


class SandboxUnavailableError(SandboxError):
    """The backend cannot run here: no engine, no image, no kernel support."""


class SandboxTimeoutError(SandboxError):
    """The sandbox machinery itself (not the user's program) did not answer in time."""


class SandboxResourceError(SandboxError):
    """The host could not provide a resource the sandbox needs (disk, containers)."""


class SandboxInputError(SandboxError, ValueError):
    """Bad input to ``Sandbox.run``: unsafe file names, empty command, undecodable text."""


class VerificationError(SipdoError):
    """The verification harness failed (not: the candidate failed verification)."""


class ModelError(SipdoError):
    """A model backend failed."""


class ModelUnavailableError(ModelError):
    """The model cannot be reached or loaded."""


class ModelOutputError(ModelError):
    """The model's output could not be parsed even after the retries."""


class ScriptExhaustedError(ModelError):
    """A ScriptedChatModel was called more times than it has scripted responses."""


class StoreError(SipdoError):
    """The run store failed."""


class RunNotFoundError(StoreError, KeyError):
    """No run with the given id."""


class ModelBackendDownError(ModelUnavailableError):
    """A model server was still down, hung or rate-limiting when the retry limit ran out.

    ``backend`` names it (model and base URL), ``attempts`` counts the calls made
    and ``waited_s`` the seconds spent from the first failure to giving up.
    """

    def __init__(
        self, message: str, *, backend: str = "", attempts: int = 0, waited_s: float = 0.0
    ) -> None:
        super().__init__(message)
        self.backend = backend
        self.attempts = attempts
        self.waited_s = waited_s


class StoreUnavailableError(StoreError):
    """The run store's database stayed unreachable or locked past the retry limit, or its
    disk is full; nothing of the failed write was kept."""


class RunStoppedError(SipdoError):
    """A run stopped because something it depends on (model server, run store, checkpoint
    file, sandbox engine) failed past its retries; everything up to the run's last
    finished step is kept, and ``resume_command`` continues it once the fault is gone."""

    def __init__(self, message: str, *, run_id: str = "", resume_command: str = "") -> None:
        super().__init__(message)
        self.run_id = run_id
        self.resume_command = resume_command
