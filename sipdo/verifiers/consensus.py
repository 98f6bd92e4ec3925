"""Verification of non-code answers by normalization and k-of-n voting."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sipdo.errors import ConfigurationError
from sipdo.verifiers.protocol import Verifier
from sipdo.verifiers.types import Check, Verdict

_PREFIX = re.compile(r"^(?:final answer|the answer is|answer)\s*[:=]?\s*", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_NUMBER = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")
_TRUTHY = {"yes": "true", "true": "true", "no": "false", "false": "false"}


def normalize_answer(text: str) -> str:
    """Canonical form of a short answer: case, spacing, wrapping and number format removed.

    ``"  The answer is: $1,000.50$. "`` and ``"1000.5"`` both give ``"1000.5"``.
    """
    s = unicodedata.normalize("NFKC", str(text)).strip()
    boxed = _BOXED.findall(s)
    if boxed:
        s = boxed[-1]
    s = _PREFIX.sub("", s).lstrip(" $\"'`").rstrip(" $.!;\"'`")
    s = re.sub(r"\s+", " ", s).casefold()
    if _NUMBER.match(s):
        s = s.replace(",", "").lstrip("+")
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        if s in ("-0", ""):
            s = "0"
    return _TRUTHY.get(s, s)


@dataclass(frozen=True)
class Vote:
    """The outcome of a k-of-n vote over normalized answers."""

    winner: str | None
    count: int
    total: int
    agreed: bool


class ConsensusVerifier(Verifier):
    """Accepts an answer equal to the one at least ``k`` of ``n`` independent solvers agree on.

    ``task`` is the list of independent answers (generator, checkers, ...) or a
    single expected answer; ``k`` defaults to a strict majority. No consensus
    means no verdict can pass: the task itself is ambiguous.
    """

    def __init__(
        self, *, k: int | None = None, normalizer: Callable[[str], str] = normalize_answer
    ) -> None:
        if k is not None and k < 1:
            raise ConfigurationError(f"ConsensusVerifier k must be >= 1, got {k}")
        self.k = k
        self.normalizer = normalizer

    def vote(self, answers: Sequence[str]) -> Vote:
        """The normalized answer with the most votes, and whether it reaches ``k``."""
        if isinstance(answers, str):
            answers = [answers]
        normalized = [self.normalizer(a) for a in answers if a is not None and str(a).strip()]
        if not normalized:
            return Vote(None, 0, len(answers), False)
        ranked = Counter(normalized).most_common()
        (winner, count) = ranked[0]
        tie = len(ranked) > 1 and ranked[1][1] == count
        need = self.k if self.k is not None else len(answers) // 2 + 1
        return Vote(None if tie else winner, count, len(answers), not tie and count >= need)

    def verify(self, task: Sequence[str] | str, answer: str) -> Verdict:
        """Grade ``answer`` against the consensus of ``task``'s answers."""
        vote = self.vote([task] if isinstance(task, str) else list(task))
        got = self.normalizer(answer) if answer is not None else ""
        checks = [
            Check(name="consensus", passed=vote.agreed, score=vote.count / max(1, vote.total),
                  detail=f"{vote.count} of {vote.total} agree on {vote.winner!r}"),
        ]  # fmt: skip
        if not vote.agreed:
            text = f"no consensus among the reference answers ({vote.count} of {vote.total} agree)"
            return Verdict(passed=False, score=0.0, feedback=text, checks=checks)
        passed = got == vote.winner
        checks.append(
            Check(
                name="answer",
                passed=passed,
                score=float(passed),
                detail=f"normalized answer {got!r}",
            )
        )
        feedback = (
            "answer matches the consensus"
            if passed
            else f"answer {got!r} differs from the consensus answer"
        )
        return Verdict(passed=passed, score=float(passed), feedback=feedback, checks=checks)

    async def averify(self, task: Sequence[str] | str, answer: str) -> Verdict:
        return self.verify(task, answer)
