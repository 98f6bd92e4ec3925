"""What a dataset run found, folded from its verdict records: counts, reasons, pass@k.

``DatasetSummary.add(record)`` is pure bookkeeping, so the same summary comes
out of a live run, a resumed one, or an old output file read back
(``summarize``). Memory is per task (``solutions`` mode keeps ``n`` and
``c`` per task id for pass@k), never per row.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sipdo.errors import ConfigurationError

MUTATION_BINS = 10


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimator (Chen et al. 2021): 1 - C(n-c, k) / C(n, k).

    ``n`` samples of which ``c`` pass; computed as a product, stable for large n.
    """
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    fail = 1.0
    for i in range(n - c + 1, n + 1):
        fail *= 1.0 - k / i
    return 1.0 - fail


@dataclass
class DatasetSummary:
    """Counts by status and by rejection reason, the mutation-score histogram, pass@k."""

    ks: Sequence[int] = (1, 10, 100)
    rows: int = 0
    passed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    mutation_bins: list[int] = field(default_factory=lambda: [0] * MUTATION_BINS)
    per_task: dict[str, list[int]] = field(default_factory=dict)  # task id -> [n, c]
    seconds: float = 0.0
    unreadable_tasks: list[str] = field(default_factory=list)  # solutions mode: lost task rows

    def add(self, record: Mapping[str, Any]) -> None:
        """Fold one verdict record in."""
        self.rows += 1
        ok = bool(record.get("passed"))
        self.passed += ok
        status = str(record.get("status", "unknown"))
        self.statuses[status] += 1
        if not ok:
            failed = record.get("failed_checks") or []
            self.reasons[failed[0] if failed else status] += 1
        score = record.get("mutation_score")
        if isinstance(score, int | float):
            self.mutation_bins[min(int(score * MUTATION_BINS), MUTATION_BINS - 1)] += 1
        if record.get("mode") == "solutions" and status in ("passed", "failed"):
            nc = self.per_task.setdefault(str(record.get("task_id")), [0, 0])
            nc[0] += 1
            nc[1] += ok
        timings = record.get("timings") or {}
        self.seconds += float(timings.get("verify_s", 0.0) or 0.0)

    def pass_at(self) -> dict[str, float]:
        """``{"pass@k": mean over tasks}`` for each k every graded task has samples for."""
        if not self.per_task:
            return {}
        least = min(n for n, _ in self.per_task.values())
        return {
            f"pass@{k}": sum(pass_at_k(n, c, k) for n, c in self.per_task.values())
            / len(self.per_task)
            for k in self.ks
            if k <= least
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "passed": self.passed,
            "statuses": dict(self.statuses),
            "rejected_by": dict(self.reasons.most_common()),
            "mutation_score_histogram": {
                f"{i / MUTATION_BINS:.1f}-{(i + 1) / MUTATION_BINS:.1f}": n
                for i, n in enumerate(self.mutation_bins)
            },
            "tasks_graded": len(self.per_task),
            **self.pass_at(),
            "unreadable_task_rows": list(self.unreadable_tasks),
            "verify_seconds": round(self.seconds, 2),
        }


def summarize(
    records: Iterable[Mapping[str, Any]], ks: Sequence[int] = (1, 10, 100)
) -> DatasetSummary:
    summary = DatasetSummary(ks=ks)
    for r in records:
        summary.add(r)
    return summary


def read_verdicts(path: Path) -> Iterable[dict[str, Any]]:
    """The records of a verdict file, streamed (a torn last line is skipped)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    with handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record
