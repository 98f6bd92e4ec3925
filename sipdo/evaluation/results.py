"""What an eval found, folded from its per-sample records (pure: no I/O).

A *sample record* is one graded answer (``SampleRecord``): the same shape
whether it was just graded, kept from an interrupted eval, or read back from
the run store, so ``summarize`` gives the same ``EvalResult`` in all three
cases. pass@k uses the unbiased estimator over the samples of each task
(``sipdo.verifiers.summary.pass_at_k``), averaged over tasks; a k above some
task's sample count is not reported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sipdo.verifiers.summary import pass_at_k

# Statuses of samples that count in pass@k (a reply without code is a wrong answer).
COUNTED = ("graded", "no_code")
# Statuses of rows that could not be graded at all; listed, never counted.
UNGRADED = ("task_error", "unknown_task", "bad_row")


@dataclass(frozen=True)
class SampleRecord:
    """One graded sample (or one input row that could not be graded, with ``status`` why)."""

    task_id: str
    sample: int
    status: str
    answer: str
    base_passed: bool
    full_passed: bool
    feedback: str
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_stored(cls, row: Any) -> SampleRecord:
        """From a store ``EvalResultRecord`` (or any object with the same attributes)."""
        return cls(
            task_id=row.task_id,
            sample=row.sample,
            status=row.status,
            answer=row.answer,
            base_passed=row.base_passed,
            full_passed=row.full_passed,
            feedback=row.feedback,
            data=dict(row.data),
        )


@dataclass(frozen=True)
class TaskScore:
    """One task: ``n`` samples counted, ``base`` / ``full`` of them passed."""

    task_id: str
    n: int
    base: int
    full: int


@dataclass(frozen=True)
class Disagreement:
    """A sample the two gradings judge differently."""

    task_id: str
    sample: int
    base_passed: bool
    full_passed: bool
    feedback: str


@dataclass(frozen=True)
class Usage:
    """What the eval spent: model calls and tokens, model and sandbox seconds, wall time."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    model_seconds: float = 0.0
    sandbox_seconds: float = 0.0
    wall_seconds: float = 0.0


@dataclass(frozen=True)
class EvalResult:
    """The outcome of an eval: pass@k both ways, per-task scores, disagreements, problems.

    ``pass_at_k["base"]`` grades with the tasks' own tests only (for HumanEval:
    comparable to published numbers); ``pass_at_k["full"]`` with sipdo's full
    verification. ``problems`` are rows that could not be graded (``task_error``,
    ``unknown_task``, ``bad_row``) with the reason; they are not in pass@k.
    """

    eval_id: str
    model: str
    benchmark: str
    settings: dict[str, Any]
    tasks: list[TaskScore]
    pass_at_k: dict[str, dict[int, float]]
    disagreements: list[Disagreement]
    problems: list[SampleRecord]
    usage: Usage
    kept: int = 0
    status: str = "finished"
    spent: Usage | None = None  # what this call spent (``usage`` covers kept samples too)

    @property
    def pass_at_1(self) -> float | None:
        """pass@1 under full verification (None with no graded task)."""
        return self.pass_at_k["full"].get(1)

    @property
    def base_pass_at_1(self) -> float | None:
        """pass@1 under the tasks' own tests only."""
        return self.pass_at_k["base"].get(1)

    @property
    def samples(self) -> int:
        return sum(t.n for t in self.tasks)

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary (what the run store keeps with the eval)."""
        return {
            "model": self.model,
            "benchmark": self.benchmark,
            "settings": self.settings,
            "tasks": len(self.tasks),
            "samples": self.samples,
            "passed": {
                "base": sum(t.base for t in self.tasks),
                "full": sum(t.full for t in self.tasks),
            },
            "pass_at_k": {g: {str(k): v for k, v in d.items()} for g, d in self.pass_at_k.items()},
            "disagreements": [asdict(d) for d in self.disagreements],
            "problems": [
                {"task_id": p.task_id, "sample": p.sample, "status": p.status, "reason": p.feedback}
                for p in self.problems
            ],
            "usage": asdict(self.usage),
            "kept": self.kept,
        }


def summarize(
    records: Iterable[SampleRecord],
    *,
    eval_id: str,
    model: str,
    benchmark: str,
    settings: Mapping[str, Any],
    ks: Sequence[int],
    order: Sequence[str] = (),
    usage: Usage | None = None,
    kept: int = 0,
    status: str = "finished",
    spent: Usage | None = None,
) -> EvalResult:
    """Fold sample records into an ``EvalResult`` (tasks listed in ``order``, then the rest)."""
    counted: dict[str, list[SampleRecord]] = {}
    problems: list[SampleRecord] = []
    for rec in records:
        if rec.status in COUNTED:
            counted.setdefault(rec.task_id, []).append(rec)
        else:
            problems.append(rec)
    rank = {tid: i for i, tid in enumerate(order)}
    ids = sorted(counted, key=lambda t: (rank.get(t, len(rank)), t))
    tasks = [
        TaskScore(
            t,
            len(counted[t]),
            sum(r.base_passed for r in counted[t]),
            sum(r.full_passed for r in counted[t]),
        )
        for t in ids
    ]
    scores: dict[str, dict[int, float]] = {"base": {}, "full": {}}
    for k in sorted(set(ks)):
        if not tasks or any(t.n < k for t in tasks):
            continue
        scores["base"][k] = sum(pass_at_k(t.n, t.base, k) for t in tasks) / len(tasks)
        scores["full"][k] = sum(pass_at_k(t.n, t.full, k) for t in tasks) / len(tasks)
    disagreements = [
        Disagreement(r.task_id, r.sample, r.base_passed, r.full_passed, r.feedback)
        for t in ids
        for r in sorted(counted[t], key=lambda r: r.sample)
        if r.base_passed != r.full_passed
    ]
    problems.sort(key=lambda r: (rank.get(r.task_id, len(rank)), r.task_id, r.sample))
    return EvalResult(
        eval_id=eval_id,
        model=model,
        benchmark=benchmark,
        settings=dict(settings),
        tasks=tasks,
        pass_at_k=scores,
        disagreements=disagreements,
        problems=problems,
        usage=usage or Usage(),
        kept=kept,
        status=status,
        spent=spent,
    )


def default_ks(samples_per_task: int) -> tuple[int, ...]:
    """pass@1, and pass@n (plus 10 and 100 where they fit) for n samples per task."""
    return tuple(sorted({1, samples_per_task} | {k for k in (10, 100) if k <= samples_per_task}))


def derive_eval_id(identity: Mapping[str, Any]) -> str:
    """A stable id from everything that decides the outcome: the same eval gets the
    same id, so running the same command again resumes it."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return "eval-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
