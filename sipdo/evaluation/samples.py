"""Samples files: rows ``{"task_id", "solution" | "completion"}`` graded without a model.

The layout of EvalPlus / HumanEval samples: ``solution`` is a whole module,
``completion`` the body that follows the task's prompt (the answer is
``prompt + completion``, HumanEval's convention). Several rows for one task
are several samples of it (pass@k). A row that cannot be read is kept as a
``SampleRow`` with its ``error`` and line number, never dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sipdo.errors import ConfigurationError
from sipdo.evaluation.benchmarks import task_key
from sipdo.evaluation.engine import Progress, outside_loop, run_eval
from sipdo.evaluation.plan import Estimate, Job, tasks_digest
from sipdo.evaluation.results import EvalResult, default_ks
from sipdo.sandbox.base import Sandbox
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.types import CodeTask

if TYPE_CHECKING:
    from sipdo.store.evals import EvalRuns


@dataclass(frozen=True)
class SampleRow:
    """One row: a task id and the answer text, or the reason the row is unusable."""

    line: int
    task_id: str | None
    solution: str | None = None
    completion: str | None = None
    error: str | None = None


def parse_row(line: int, text: str) -> SampleRow:
    """One line of a samples file as a ``SampleRow`` (``error`` set when unusable)."""
    try:
        row = json.loads(text)
    except ValueError as exc:
        return SampleRow(line, None, error=f"line {line}: not JSON: {exc}")
    if not isinstance(row, dict):
        return SampleRow(line, None, error=f"line {line}: a sample row must be a JSON object")
    raw_id = row.get("task_id")
    if not isinstance(raw_id, str | int) or isinstance(raw_id, bool) or not str(raw_id).strip():
        return SampleRow(line, None, error=f"line {line}: no task_id")
    task_id = task_key(raw_id)
    solution, completion = row.get("solution"), row.get("completion")
    if solution is None and completion is None:
        return SampleRow(line, task_id, error=f"line {line}: neither solution nor completion")
    for name, value in (("solution", solution), ("completion", completion)):
        if value is not None and not isinstance(value, str):
            return SampleRow(line, task_id, error=f"line {line}: {name} must be a string")
    return SampleRow(
        line,
        task_id,
        solution=solution if isinstance(solution, str) else None,
        completion=completion if isinstance(completion, str) else None,
    )


def read_samples(path: str | Path) -> tuple[list[SampleRow], str]:
    """Every non-blank row of the file (unusable ones flagged) and the file's digest."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read samples file {file}: {exc}") from exc
    text = data.decode("utf-8", errors="replace")
    rows = [parse_row(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not rows:
        raise ConfigurationError(f"{file}: no samples in the file")
    return rows, hashlib.sha256(data).hexdigest()


def sample_jobs(rows: Sequence[SampleRow], tasks: Sequence[CodeTask]) -> list[Job]:
    """One job per samples row: unreadable rows and unknown task ids become problems."""
    by_id = {task_key(t.id): t for t in tasks}
    seen: Counter[str] = Counter()
    out: list[Job] = []
    for row in rows:
        if row.error is not None or row.task_id is None:
            out.append(
                Job(f"line-{row.line}", 0, None, problem=("bad_row", row.error or "bad row"))
            )
            continue
        task = by_id.get(row.task_id)
        sample = seen[row.task_id]
        seen[row.task_id] += 1
        if task is None:
            reason = f"line {row.line}: unknown task id {row.task_id!r} (not in the task set)"
            out.append(
                Job(
                    row.task_id,
                    sample,
                    None,
                    answer=row.solution or row.completion,
                    problem=("unknown_task", reason),
                )
            )
            continue
        answer = row.solution if row.solution is not None else task.prompt + (row.completion or "")
        out.append(Job(row.task_id, sample, task, answer=answer))
    return out


async def agrade_samples(
    samples: str | Path,
    tasks: Sequence[CodeTask],
    *,
    sandbox: Sandbox | str = "auto",
    store: EvalRuns | None = None,
    eval_id: str | None = None,
    ks: Sequence[int] | None = None,
    jobs: int = 2,
    config: VerifierConfig | None = None,
    benchmark: str = "tasks",
    progress: Progress | None = None,
) -> EvalResult:
    """Grade a samples file against ``tasks`` without a model (both gradings)."""
    rows, digest = read_samples(samples)
    jobs_list = sample_jobs(rows, tasks)
    per_task = Counter(j.task_id for j in jobs_list if j.problem is None)
    ks = tuple(ks) if ks else default_ks(min(per_task.values(), default=1))
    settings = {
        "mode": "samples",
        "samples_file": str(samples),
        "samples_digest": digest[:16],
        "rows": len(rows),
        "ks": list(ks),
        "tasks": len(per_task),
        "tasks_digest": tasks_digest(tasks),
    }
    identity = {**settings, "samples_file": None, "ks": None}

    async def answer_of(job: Job) -> tuple[str, dict[str, Any]]:
        return job.answer or "", {}

    return await run_eval(
        jobs_list=jobs_list,
        answer_of=answer_of,
        identity=identity,
        settings=settings,
        prompt="",
        model="(samples file)",
        benchmark=benchmark,
        order=[task_key(t.id) for t in tasks],
        ks=ks,
        sandbox=sandbox,
        store=store,
        eval_id=eval_id,
        jobs=jobs,
        config=config,
        progress=progress,
        source_run_id=None,
        source_version=None,
        start_event={"estimate": Estimate(0, 0, 0)},
    )


def grade_samples(samples: str | Path, tasks: Sequence[CodeTask], **kw: Any) -> EvalResult:
    """Blocking twin of ``agrade_samples`` (same arguments); not for use inside a loop."""
    outside_loop()
    return asyncio.run(agrade_samples(samples, tasks, **kw))
