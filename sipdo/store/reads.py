"""The reading half of ``RunStore``: rows to frozen records."""

from __future__ import annotations

from abc import abstractmethod
from collections import defaultdict
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from sipdo.store.records import (
    AttemptRecord,
    PromptVersionRecord,
    RunRecord,
    TaskRecord,
    UsageRecord,
    VerdictRecord,
)
from sipdo.store.tables import (
    AttemptRow,
    PromptVersionRow,
    RunRow,
    TaskRow,
    TaskVerdictRow,
    UsageRow,
)

# Roles whose attempts are not a prompt version solving the task (they write or check it).
NON_SOLVING_ROLES = frozenset({"generator", "checker"})


class StoreReads:
    """Readers over the tables; the subclass provides sessions and the run lookup."""

    @abstractmethod
    def _session(self) -> AbstractContextManager[Session]: ...

    @staticmethod
    @abstractmethod
    def _run(session: Session, run_id: str) -> RunRow: ...

    def list_runs(self) -> list[RunRecord]:
        with self._session() as session:
            rows = session.exec(
                select(RunRow).order_by(col(RunRow.created_at).desc(), col(RunRow.run_id))
            ).all()
            return [self._run_record(session, row) for row in rows]

    def get_run(self, run_id: str) -> RunRecord:
        with self._session() as session:
            return self._run_record(session, self._run(session, run_id))

    def _run_record(self, session: Session, row: RunRow) -> RunRecord:
        def count(table: Any, *where: Any) -> int:
            stmt = select(func.count()).select_from(table).where(table.run_id == row.run_id, *where)
            return int(session.exec(stmt).one())

        scores = session.exec(
            select(PromptVersionRow.scores).where(
                PromptVersionRow.run_id == row.run_id, col(PromptVersionRow.accepted)
            )
        ).all()
        best = [v for v in map(_headline_score, scores) if v is not None]
        return RunRecord(
            run_id=row.run_id,
            status=row.status,
            config=dict(row.config),
            initial_prompt=row.initial_prompt,
            best_prompt=row.best_prompt,
            stop_reason=row.stop_reason,
            created_at=row.created_at,
            finished_at=row.finished_at,
            prompt_versions=count(PromptVersionRow),
            accepted_tasks=count(TaskRow, col(TaskRow.status) == "accepted"),
            rejected_tasks=count(TaskRow, col(TaskRow.status) == "rejected"),
            best_score=max(best) if best else None,
        )

    def prompt_lineage(self, run_id: str) -> list[PromptVersionRecord]:
        with self._session() as session:
            self._run(session, run_id)
            rows = session.exec(
                select(PromptVersionRow)
                .where(PromptVersionRow.run_id == run_id)
                .order_by(col(PromptVersionRow.seq))
            ).all()
        return [
            PromptVersionRecord(
                version_id=r.version_id,
                parent_id=r.parent_id,
                text=r.text,
                diff=r.diff,
                accepted=r.accepted,
                scores=dict(r.scores),
                feedback=r.feedback,
                iteration=r.iteration,
                created_at=r.created_at,
                parent_ids=tuple(r.parent_ids or ([r.parent_id] if r.parent_id else [])),
                components=dict(r.components or {"instructions": r.text}),
                operator=r.operator or ("initial" if r.parent_id is None else "refine"),
                meta=dict(r.meta or {}),
            )
            for r in rows
        ]

    def score_table(
        self, run_id: str, role: str = "learner"
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """Prompt version -> task id -> ``{"passed", "score"}`` from the ``role``'s attempts:
        the score table of the run (the latest sample of each cell)."""
        table: dict[str, dict[str, dict[str, Any]]] = {}
        for a in self.attempts(run_id):
            if a.role == role:
                table.setdefault(a.prompt_version_id, {})[a.task_id] = {
                    "passed": a.passed,
                    "score": a.score,
                }
        return table

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        with self._session() as session:
            self._run(session, run_id)
            rows = session.exec(
                select(AttemptRow).where(AttemptRow.run_id == run_id).order_by(col(AttemptRow.seq))
            ).all()
        return [
            AttemptRecord(
                task_id=r.task_id,
                prompt_version_id=r.prompt_version_id,
                role=r.role,
                answer=r.answer,
                passed=r.passed,
                score=r.score,
                feedback=r.feedback,
                created_at=r.created_at,
                structured=r.answer_json,
            )
            for r in rows
        ]

    def tasks(self, run_id: str) -> list[TaskRecord]:
        with self._session() as session:
            self._run(session, run_id)
            rows = session.exec(
                select(TaskRow).where(TaskRow.run_id == run_id).order_by(col(TaskRow.seq))
            ).all()
            verdict_rows = session.exec(
                select(TaskVerdictRow)
                .where(TaskVerdictRow.run_id == run_id)
                .order_by(col(TaskVerdictRow.seq))
            ).all()
        verdicts: dict[str, list[VerdictRecord]] = defaultdict(list)
        for v in verdict_rows:
            verdicts[v.task_id].append(VerdictRecord(v.status, v.reason, v.verdict, v.created_at))
        failed, solved = _first_versions(self.attempts(run_id))
        return [
            TaskRecord(
                task_id=r.task_id,
                task=dict(r.task),
                status=r.status,
                reason=r.reason,
                difficulty=r.difficulty,
                weakness=r.weakness,
                verdicts=tuple(verdicts[r.task_id]),
                first_failed_version=failed.get(r.task_id),
                first_solved_version=solved.get(r.task_id),
            )
            for r in rows
        ]

    def usage(self, run_id: str) -> list[UsageRecord]:
        with self._session() as session:
            self._run(session, run_id)
            stmt = (
                sa_select(
                    col(UsageRow.role),
                    col(UsageRow.model),
                    func.sum(UsageRow.calls),
                    func.sum(UsageRow.input_tokens),
                    func.sum(UsageRow.output_tokens),
                    func.sum(UsageRow.latency_s),
                )
                .where(col(UsageRow.run_id) == run_id)
                .group_by(col(UsageRow.role), col(UsageRow.model))
                .order_by(col(UsageRow.role), col(UsageRow.model))
            )
            rows = session.execute(stmt).all()
        return [
            UsageRecord(role, model, int(calls), int(tin), int(tout), float(lat))
            for role, model, calls, tin, tout, lat in rows
        ]


def _headline_score(scores: Any) -> float | None:
    """A prompt version's headline score: ``score``, else ``pass_rate``."""
    if not isinstance(scores, dict):
        return None
    for key in ("score", "pass_rate"):
        if isinstance(scores.get(key), int | float):
            return float(scores[key])
    return None


def _first_versions(
    attempts: Iterator[AttemptRecord] | list[AttemptRecord],
) -> tuple[dict[str, str], dict[str, str]]:
    """Per task, the first prompt version whose solving attempt failed / passed."""
    failed: dict[str, str] = {}
    solved: dict[str, str] = {}
    for a in attempts:
        if a.role in NON_SOLVING_ROLES:
            continue
        target = solved if a.passed else failed
        target.setdefault(a.task_id, a.prompt_version_id)
    return failed, solved
