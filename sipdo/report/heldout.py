"""Held-out results of a run: the prompt versions' scores on tasks the loop never saw.

Read from what is recorded, never estimated: the graph's ``holdout`` history
entries (``sipdo run --holdout``) in the run's checkpoint, and the run store's
held-out evaluations where the store keeps them. No record, no point: the report
then says that no held-out evaluation was recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class HeldOutPoint:
    """One prompt version's held-out result."""

    version_id: str
    iteration: int | None
    passed: int | None
    total: int | None
    score: float  # pass@1 under sipdo's full verification, 0..1
    source: str  # where it was read: "run store" or "checkpoint"
    base_score: float | None = None  # pass@1 on the benchmark's own tests only
    benchmark: str = ""


def heldout_points(
    store: Any,
    run_id: str,
    checkpoint: Mapping[str, Any] | None,
    iterations: Mapping[str, int] | None = None,
) -> list[HeldOutPoint]:
    """Every recorded held-out result of ``run_id``, by iteration; the store's win over
    the checkpoint's for the same version. A point without an iteration (an eval of a
    version made after the run) takes its version's from ``iterations``."""
    points: dict[str, HeldOutPoint] = {}
    for point in _from_checkpoint(checkpoint):
        points[point.version_id] = point
    for point in _from_store(store, run_id):
        points[point.version_id] = point
    known = iterations or {}
    placed = [
        replace(p, iteration=known.get(p.version_id)) if p.iteration is None else p
        for p in points.values()
    ]
    return sorted(placed, key=lambda p: (p.iteration is None, p.iteration or 0))


def _from_checkpoint(values: Mapping[str, Any] | None) -> Iterator[HeldOutPoint]:
    history: Sequence[Any] = (values or {}).get("history") or ()
    for entry in history:
        if not isinstance(entry, Mapping) or entry.get("kind") != "holdout":
            continue
        point = _point(entry, "checkpoint")
        if point is not None:
            yield point


def _from_store(store: Any, run_id: str) -> Iterator[HeldOutPoint]:
    # The held-out tables of `sipdo eval` / `sipdo run --holdout` (sipdo.store.evals),
    # where this store has them.
    reader = getattr(store, "heldout_curve", None)
    if not callable(reader):
        return
    for row in reader(run_id):
        data = row if isinstance(row, Mapping) else vars(row)
        point = _point(data, "run store")
        if point is not None:
            yield point


def _point(data: Mapping[str, Any], source: str) -> HeldOutPoint | None:
    version = data.get("version_id")
    passed, total = data.get("passed"), data.get("total")
    score = data.get("pass_at_1")
    if not isinstance(score, int | float) and isinstance(passed, int) and total:
        score = passed / total
    if not isinstance(version, str) or not isinstance(score, int | float):
        return None
    iteration = data.get("iteration")
    base = data.get("base_pass_at_1")
    return HeldOutPoint(
        version_id=version,
        iteration=iteration if isinstance(iteration, int) else None,
        passed=passed if isinstance(passed, int) else None,
        total=total if isinstance(total, int) else None,
        score=float(score),
        source=source,
        base_score=float(base) if isinstance(base, int | float) else None,
        benchmark=str(data.get("benchmark") or ""),
    )
