"""The held-out half of ``RunStore``: eval runs and their per-sample results.

``sipdo eval`` and ``sipdo.evaluation.evaluate_prompt`` write one eval run
(``create_eval``), one result per graded sample as soon as it is graded
(``record_eval_result``, so a killed eval loses at most the samples in
flight), and the summary at the end (``finish_eval``). Every write is
idempotent, like the rest of the store: repeating ``create_eval`` on a
resume marks the eval running again and keeps its settings; a sample graded
again replaces its row. ``list_evals(source_run_id=...)`` is the held-out
curve of a run, in the order the evals were started.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from sipdo.errors import ConfigurationError, RunNotFoundError
from sipdo.store.eval_tables import EvalResultRow, EvalRunRow
from sipdo.store.tables import utcnow

# Methods of this mixin that ``RunStore`` wraps in its RetryPolicy (one transaction each).
EVAL_RETRIED = (
    "create_eval",
    "record_eval_result",
    "finish_eval",
    "delete_eval",
    "get_eval",
    "list_evals",
    "eval_results",
    "heldout_curve",
)


@dataclass(frozen=True)
class EvalRecord:
    """An eval run; ``results`` counts the graded samples stored so far."""

    eval_id: str
    status: str
    prompt: str
    model: str
    benchmark: str
    config: dict[str, Any]
    summary: dict[str, Any] | None
    source_run_id: str | None
    source_version: str | None
    created_at: datetime
    finished_at: datetime | None
    results: int = 0


@dataclass(frozen=True)
class EvalResultRecord:
    """One graded sample of an eval."""

    task_id: str
    sample: int
    status: str
    answer: str
    base_passed: bool
    full_passed: bool
    feedback: str
    data: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-safe dict (``created_at`` as ISO text), the JSONL export's row."""
        out = asdict(self)
        out["created_at"] = self.created_at.isoformat() if self.created_at else None
        return out


def _json(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{what} is not JSON-serializable: {exc}") from exc


class EvalRuns:
    """Writers and readers of the eval tables; the subclass provides sessions."""

    @abstractmethod
    def _session(self) -> AbstractContextManager[Session]: ...

    @abstractmethod
    def _upsert(self, write: Callable[[Session], None]) -> None: ...

    @staticmethod
    def _eval(session: Session, eval_id: str) -> EvalRunRow:
        row = session.get(EvalRunRow, eval_id)
        if row is None:
            raise RunNotFoundError(f"no eval run {eval_id!r}")
        return row

    def create_eval(
        self,
        eval_id: str,
        *,
        prompt: str,
        model: str,
        benchmark: str,
        config: Mapping[str, Any],
        source_run_id: str | None = None,
        source_version: str | None = None,
    ) -> None:
        """Start an eval, or mark an existing one running again (its settings are kept;
        new config keys are added)."""
        if not isinstance(eval_id, str) or not eval_id.strip():
            raise ConfigurationError("eval_id must be a non-empty string")
        data: dict[str, Any] = _json(dict(config), "eval config")

        def write(session: Session) -> None:
            row = session.get(EvalRunRow, eval_id)
            if row is None:
                session.add(
                    EvalRunRow(
                        eval_id=eval_id,
                        prompt=prompt,
                        model=model,
                        benchmark=benchmark,
                        config=data,
                        source_run_id=source_run_id,
                        source_version=source_version,
                    )
                )
                return
            row.config = {**data, **row.config}
            row.status, row.finished_at = "running", None

        self._upsert(write)

    def record_eval_result(
        self,
        eval_id: str,
        task_id: str,
        sample: int,
        *,
        status: str,
        answer: str,
        base_passed: bool,
        full_passed: bool,
        feedback: str,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Store one graded sample; the same (task, sample) again replaces it."""
        if not task_id or sample < 0:
            raise ConfigurationError("a result needs a task id and a sample index >= 0")
        values: dict[str, Any] = {
            "status": status,
            "answer": answer,
            "base_passed": bool(base_passed),
            "full_passed": bool(full_passed),
            "feedback": feedback,
            "data": _json(dict(data or {}), "result data"),
        }

        def write(session: Session) -> None:
            self._eval(session, eval_id)
            row = session.exec(
                select(EvalResultRow).where(
                    EvalResultRow.eval_id == eval_id,
                    EvalResultRow.task_id == task_id,
                    EvalResultRow.sample == sample,
                )
            ).first()
            if row is None:
                session.add(
                    EvalResultRow(eval_id=eval_id, task_id=task_id, sample=sample, **values)
                )
                return
            for name, value in values.items():
                setattr(row, name, value)
            row.created_at = utcnow()

        self._upsert(write)

    def finish_eval(self, eval_id: str, status: str, summary: Mapping[str, Any]) -> None:
        """Mark the eval finished with its summary (repeatable: the last call wins)."""
        data = _json(dict(summary), "eval summary")
        with self._session() as session:
            row = self._eval(session, eval_id)
            row.status, row.summary, row.finished_at = status, data, utcnow()

    def delete_eval(self, eval_id: str) -> None:
        """Remove an eval and its results."""
        with self._session() as session:
            row = self._eval(session, eval_id)
            for result in session.exec(
                select(EvalResultRow).where(EvalResultRow.eval_id == eval_id)
            ):
                session.delete(result)
            session.flush()
            session.delete(row)

    def get_eval(self, eval_id: str) -> EvalRecord:
        """One eval; ``RunNotFoundError`` if there is none with that id."""
        with self._session() as session:
            row = self._eval(session, eval_id)
            return self._eval_record(session, row)

    def list_evals(self, *, source_run_id: str | None = None) -> list[EvalRecord]:
        """Every eval (or those of one source run), oldest first."""
        with self._session() as session:
            stmt = select(EvalRunRow)
            if source_run_id is not None:
                stmt = stmt.where(EvalRunRow.source_run_id == source_run_id)
            rows = session.exec(
                stmt.order_by(col(EvalRunRow.created_at), col(EvalRunRow.eval_id))
            ).all()
            return [self._eval_record(session, row) for row in rows]

    def eval_results(self, eval_id: str) -> list[EvalResultRecord]:
        """Every graded sample of the eval, in the order first stored."""
        with self._session() as session:
            self._eval(session, eval_id)
            rows = session.exec(
                select(EvalResultRow)
                .where(EvalResultRow.eval_id == eval_id)
                .order_by(col(EvalResultRow.seq))
            ).all()
            return [
                EvalResultRecord(
                    task_id=r.task_id,
                    sample=r.sample,
                    status=r.status,
                    answer=r.answer,
                    base_passed=r.base_passed,
                    full_passed=r.full_passed,
                    feedback=r.feedback,
                    data=dict(r.data or {}),
                    created_at=r.created_at,
                )
                for r in rows
            ]

    def heldout_curve(self, run_id: str) -> list[dict[str, Any]]:
        """The run's held-out curve: one point per finished eval of one of its prompt
        versions, oldest first: ``version_id``, ``iteration`` (when recorded),
        ``passed`` / ``total`` / ``pass_at_1`` under full verification,
        ``base_pass_at_1``, ``benchmark`` and ``eval_id`` (what ``sipdo report`` plots)."""
        points: list[dict[str, Any]] = []
        for ev in self.list_evals(source_run_id=run_id):
            summary = ev.summary or {}
            if ev.status != "finished" or ev.source_version is None or "tasks" not in summary:
                continue
            pass_at = summary.get("pass_at_k") or {}
            iteration = ev.config.get("source_iteration")
            points.append(
                {
                    "version_id": ev.source_version,
                    "iteration": iteration if isinstance(iteration, int) else None,
                    "passed": int((summary.get("passed") or {}).get("full", 0)),
                    "total": int(summary["tasks"]),
                    "pass_at_1": (pass_at.get("full") or {}).get("1"),
                    "base_pass_at_1": (pass_at.get("base") or {}).get("1"),
                    "benchmark": ev.benchmark,
                    "eval_id": ev.eval_id,
                }
            )
        return points

    @staticmethod
    def _eval_record(session: Session, row: EvalRunRow) -> EvalRecord:
        count = session.exec(
            select(func.count())
            .select_from(EvalResultRow)
            .where(EvalResultRow.eval_id == row.eval_id)
        ).one()
        return EvalRecord(
            eval_id=row.eval_id,
            status=row.status,
            prompt=row.prompt,
            model=row.model,
            benchmark=row.benchmark,
            config=dict(row.config or {}),
            summary=dict(row.summary) if row.summary is not None else None,
            source_run_id=row.source_run_id,
            source_version=row.source_version,
            created_at=row.created_at,
            finished_at=row.finished_at,
            results=int(count),
        )
