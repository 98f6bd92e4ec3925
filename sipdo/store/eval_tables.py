"""SQLModel tables of held-out evaluations (``sipdo eval`` and held-out tracking).

An eval run is one prompt under one model on one task set; each graded sample
is one result row keyed by ``(eval_id, task_id, sample)``, so a resumed eval
that grades a sample again replaces it instead of adding a second row. An
eval started from a run's prompt version (``sipdo eval --run``, or the held-out
curve of ``sipdo run --holdout``) names it in ``source_run_id`` /
``source_version``; there is no foreign key, so evals of a plain prompt need no run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from sipdo.store.tables import utcnow


class EvalRunRow(SQLModel, table=True):
    """One evaluation: its settings (model, temperature, seed, task set), status, summary."""

    __tablename__ = "sipdo_eval_runs"

    eval_id: str = Field(primary_key=True, max_length=200)
    status: str = Field(default="running", max_length=40)
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    model: str = Field(sa_column=Column(Text, nullable=False))
    benchmark: str = Field(sa_column=Column(Text, nullable=False))
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    summary: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    source_run_id: str | None = Field(default=None, index=True, max_length=200)
    source_version: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class EvalResultRow(SQLModel, table=True):
    """One graded sample: the answer and both gradings (the task's own tests, full)."""

    __tablename__ = "sipdo_eval_results"
    __table_args__ = (UniqueConstraint("eval_id", "task_id", "sample"),)

    seq: int | None = Field(default=None, primary_key=True)
    eval_id: str = Field(foreign_key="sipdo_eval_runs.eval_id", index=True, max_length=200)
    task_id: str = Field(max_length=200)
    sample: int
    status: str = Field(max_length=40)
    answer: str = Field(sa_column=Column(Text, nullable=False))
    base_passed: bool
    full_passed: bool
    feedback: str = Field(sa_column=Column(Text, nullable=False))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


EVAL_TABLES = (EvalRunRow, EvalResultRow)
EVAL_TABLE_NAMES: tuple[str, ...] = tuple(str(t.__tablename__) for t in EVAL_TABLES)
