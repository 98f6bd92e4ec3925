"""What an eval has to do, decided without I/O: the jobs, what is still missing, the cost.

A ``Job`` is one (task, sample) to produce and grade, or an input row that is a
``problem`` and is recorded as such. ``plan`` drops the jobs a stored record
already answers (the resume), ``estimate`` is the cost shown before a run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel

from sipdo.evaluation.results import SampleRecord, Usage
from sipdo.verifiers.types import CodeTask

if TYPE_CHECKING:
    from sipdo.plugins.domains.base import Domain

# A held-out task: a ``CodeTask`` (graded two ways) or another domain's task dict
# (graded by that domain's verifier).
EvalTask = CodeTask | dict[str, Any]


def task_data(task: EvalTask) -> dict[str, Any]:
    """A task as the domain sees it (a JSON dict)."""
    return task.model_dump(mode="json") if isinstance(task, CodeTask) else task


def task_id_of(task: EvalTask) -> str:
    """The task's own id."""
    return str(task.id if isinstance(task, CodeTask) else task.get("id", ""))


@dataclass(frozen=True)
class Job:
    """One sample to produce: solve (or take ``answer``) and grade; or a row that is a
    ``problem`` (status, reason) and is recorded as such."""

    task_id: str
    sample: int
    task: EvalTask | None
    answer: str | None = None
    problem: tuple[str, str] | None = None


@dataclass(frozen=True)
class Estimate:
    """What an eval will cost before it starts: model calls and tokens (approximate)."""

    calls: int
    input_tokens: int
    max_output_tokens: int | None

    def describe(self) -> str:
        out = f"up to {self.max_output_tokens}" if self.max_output_tokens else "unbounded"
        return f"{self.calls} model calls, ~{self.input_tokens} input tokens, {out} output tokens"


def plan(jobs: Sequence[Job], done: Mapping[tuple[str, int], SampleRecord]) -> list[Job]:
    """The jobs whose (task, sample) has no stored record yet."""
    return [j for j in jobs if (j.task_id, j.sample) not in done]


def model_label(model: str | BaseChatModel) -> str:
    """A model's name for the record: the spec as given, else its ``model_name``."""
    if isinstance(model, str):
        return model
    for attr in ("model_name", "model"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def tasks_digest(tasks: Sequence[EvalTask]) -> str:
    """Digest of the task set's content (ids, statements, references, tests)."""
    h = hashlib.sha256()
    for t in tasks:
        # Fields left at their defaults are left out: a newer sipdo that adds an
        # optional task field keeps the digest, so a stored eval still resumes.
        data = t.model_dump(mode="json", exclude_defaults=True) if isinstance(t, CodeTask) else t
        h.update(json.dumps(data, sort_keys=True).encode("utf-8"))
    return h.hexdigest()[:16]


def estimate(
    prompt: str, tasks: Sequence[EvalTask], samples: int, domain: Domain, model: Any = None
) -> Estimate:
    """Calls = tasks x samples (at least: a multi-turn domain may ask more); input tokens
    from the messages' length (4 chars a token)."""
    chars = sum(
        len(str(m.content)) for t in tasks for m in domain.solve_messages(task_data(t), prompt)
    )
    cap = getattr(model, "max_tokens", None)
    calls = len(tasks) * samples
    return Estimate(
        calls, chars * samples // 4, cap * calls if isinstance(cap, int) and cap > 0 else None
    )


def usage_of(records: Sequence[SampleRecord], wall_seconds: float) -> Usage:
    """Model and sandbox usage summed over the records' ``data``."""

    def total(key: str) -> float:
        return sum(float(r.data.get(key, 0) or 0) for r in records)

    return Usage(
        calls=int(total("calls")),
        input_tokens=int(total("input_tokens")),
        output_tokens=int(total("output_tokens")),
        model_seconds=round(total("model_seconds"), 3),
        sandbox_seconds=round(total("grade_seconds"), 3),
        wall_seconds=round(wall_seconds, 3),
    )
