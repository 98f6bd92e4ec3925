"""Samples files: rows ``{"task_id", "solution" | "completion"}`` graded without a model.

The layout of EvalPlus / HumanEval samples: ``solution`` is a whole module,
``completion`` the body that follows the task's prompt (the answer is
``prompt + completion``, HumanEval's convention). Several rows for one task
are several samples of it (pass@k). A row that cannot be read is kept as a
``SampleRow`` with its ``error`` and line number, never dropped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from sipdo.errors import ConfigurationError
from sipdo.evaluation.benchmarks import task_key


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
