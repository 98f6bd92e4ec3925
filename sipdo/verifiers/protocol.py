"""The ``Verifier`` protocol that built-in and user verifiers implement."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from sipdo.verifiers.types import Verdict


@runtime_checkable
class Verifier(Protocol):
    """Grades one answer to one task.

    Invariants:
    - A wrong, malformed or hostile answer is data: ``verify`` returns a
      ``Verdict`` with ``passed=False`` and feedback an optimizer can act on;
      it never raises because of the answer.
    - The verdict is decided by trusted code only; nothing the answer
      contains or executes can make ``passed`` true without it being right.
    - Deterministic: the same task and answer give the same ``passed``.
    - ``score`` lies in 0..1 and is 1.0 whenever ``passed`` is true.

    Error policy: raise a ``sipdo.errors.SipdoError`` subclass
    (``VerificationError``, ``SandboxError``, ``ConfigurationError``) only
    when the verifier itself cannot work: a broken task, a missing sandbox,
    bad settings.
    """

    def verify(self, task: Any, answer: Any) -> Verdict:
        """Grade ``answer`` for ``task``."""
        ...

    async def averify(self, task: Any, answer: Any) -> Verdict:
        """Async twin of ``verify``."""
        ...
