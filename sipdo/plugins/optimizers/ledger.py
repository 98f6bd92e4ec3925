"""A step's working score table: the view's table plus what the step evaluated so far.

A strategy step sees the score table frozen at its start (``OptimizerView``);
the results of its own ``Evaluate`` requests come back as rows. ``Ledger``
overlays them, so selection logic reads one table, and renders failures from
it for optimizer prompts. Pure and JSON-safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sipdo.plugins.optimizers.base import OptimizerView
from sipdo.plugins.optimizers.scores import Cell, mean_score, missing, value


class Ledger:
    """The view's score table with the step's evaluation results laid over it."""

    def __init__(self, view: OptimizerView) -> None:
        self.view = view
        self.table: dict[str, dict[str, Cell]] = {cid: dict(row) for cid, row in view.table.items()}

    def add(self, result: Mapping[str, Mapping[str, Cell]]) -> None:
        """Lay an ``Evaluate`` result (candidate id -> task id -> cell) over the table."""
        for cid, cells in result.items():
            self.table.setdefault(cid, {}).update(cells)

    def value(self, cid: str, task_id: str) -> float:
        return value(self.table.get(cid, {}).get(task_id))

    def mean(self, cid: str, task_ids: Sequence[str]) -> float:
        """Mean pass rate on ``task_ids`` (a missing cell counts 0)."""
        return mean_score(self.table, cid, task_ids)

    def total(self, cid: str, task_ids: Sequence[str]) -> float:
        return sum(self.value(cid, t) for t in task_ids)

    def graded(self, cid: str, task_ids: Sequence[str]) -> float:
        """Sum of the verifier's graded scores on ``task_ids`` (partial credit in [0, 1]:
        the share of tests and compared inputs a failing answer got right; 0 without a
        cell)."""
        row = self.table.get(cid, {})
        return sum(float(row[t].get("score", 0.0)) if t in row else 0.0 for t in task_ids)

    def known(self, cid: str, task_ids: Sequence[str] | None = None) -> list[str]:
        """Tasks (of ``task_ids``, default every verified task) with a cell for ``cid``."""
        row = self.table.get(cid, {})
        return [t for t in (task_ids or self.view.task_ids) if t in row]

    def missing(self, cid: str, task_ids: Sequence[str]) -> list[str]:
        return missing(self.table, cid, task_ids)

    def failures(self, cid: str, task_ids: Sequence[str] | None = None) -> list[str]:
        """Tasks with a cell for ``cid`` that is not a full pass."""
        return [t for t in self.known(cid, task_ids) if self.value(cid, t) < 1]

    def trace(self, cid: str, task_id: str) -> dict[str, Any]:
        """``{"task", "answer", "verdict"}``: what ``describe`` renders."""
        cell = self.table.get(cid, {}).get(task_id, {})
        verdict = {"passed": bool(cell.get("passed")), "feedback": cell.get("feedback", "")}
        return {
            "task": self.view.tasks[task_id],
            "answer": cell.get("answer", ""),
            "verdict": verdict,
        }

    def describe_failures(self, cid: str, task_ids: Sequence[str], *, limit: int = 4) -> str:
        """The failures of ``cid`` on ``task_ids`` as text for an optimizer prompt."""
        shown = [self.view.describe(self.trace(cid, t)) for t in task_ids[:limit]]
        more = len(task_ids) - len(shown)
        return "\n\n".join(shown) + (f"\n\n(+{more} more failures)" if more > 0 else "")

    def score_rows(self, cids: Sequence[str], task_ids: Sequence[str]) -> str:
        """A small pass/fail matrix (candidates x tasks) as text: ``1`` pass, ``0`` fail,
        ``.`` not evaluated, fractions for sampled cells."""
        lines = ["candidate | " + " ".join(task_ids)]
        for cid in cids:
            row = self.table.get(cid, {})
            marks = ["." if t not in row else _mark(value(row[t])) for t in task_ids]
            lines.append(f"{cid} | " + " ".join(marks))
        return "\n".join(lines)


def _mark(v: float) -> str:
    return "1" if v >= 1 else "0" if v <= 0 else f"{v:.2f}"
