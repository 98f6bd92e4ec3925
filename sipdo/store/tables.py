"""SQLModel tables of the run store.

One row per run, prompt version, task, task verdict, attempt, usage record and
prompt-model training round.
Rows are keyed so that repeating a write (a resumed run re-executes the node
that was interrupted) finds the existing row instead of adding a second one:
prompt versions by ``(run_id, version_id)``, tasks by ``(run_id, task_id)``,
verdicts by a digest of their content, attempts by ``(run_id, task_id,
prompt_version_id, role)``, usage by ``(run_id, call_id)`` when a call id is
given, and prompt-model training rounds by ``(run_id, training_id, round)``.
``seq`` columns are autoincrement ids that keep insertion order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Timezone-aware now, in UTC."""
    return datetime.now(UTC)


class RunRow(SQLModel, table=True):
    """A run: its settings, the prompt it started from and how it ended."""

    __tablename__ = "sipdo_runs"

    run_id: str = Field(primary_key=True, max_length=200)
    status: str = Field(default="running", max_length=40)
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    initial_prompt: str = Field(sa_column=Column(Text, nullable=False))
    best_prompt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    stop_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class PromptVersionRow(SQLModel, table=True):
    """One prompt version (a candidate); ``diff`` is the unified diff against its first
    parent. ``parent_ids`` (several for a merge or crossover), ``components`` (the named
    texts ``text`` renders), ``operator`` (what made it) and ``meta`` (flags, the
    promotion decision, ratings) came with the optimizer redesign: older rows hold None.
    """

    __tablename__ = "sipdo_prompt_versions"
    __table_args__ = (UniqueConstraint("run_id", "version_id"),)

    seq: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="sipdo_runs.run_id", index=True, max_length=200)
    version_id: str = Field(max_length=200)
    parent_id: str | None = Field(default=None, max_length=200)
    text: str = Field(sa_column=Column(Text, nullable=False))
    diff: str = Field(sa_column=Column(Text, nullable=False))
    accepted: bool
    scores: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    feedback: str = Field(sa_column=Column(Text, nullable=False))
    iteration: int
    created_at: datetime = Field(default_factory=utcnow)
    parent_ids: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    components: dict[str, str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    operator: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    meta: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class TaskRow(SQLModel, table=True):
    """A task with its latest status; every verdict is in ``TaskVerdictRow``."""

    __tablename__ = "sipdo_tasks"
    __table_args__ = (UniqueConstraint("run_id", "task_id"),)

    seq: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="sipdo_runs.run_id", index=True, max_length=200)
    task_id: str = Field(max_length=200)
    task: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=20)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    difficulty: int
    weakness: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class TaskVerdictRow(SQLModel, table=True):
    """One verdict given to a task (appended; a repeated identical verdict is kept once)."""

    __tablename__ = "sipdo_task_verdicts"
    __table_args__ = (UniqueConstraint("run_id", "task_id", "digest"),)

    seq: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="sipdo_runs.run_id", index=True, max_length=200)
    task_id: str = Field(max_length=200)
    digest: str = Field(max_length=64)
    status: str = Field(max_length=20)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    verdict: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class AttemptRow(SQLModel, table=True):
    """One answer by one role under one prompt version to one task, with its textual reward."""

    __tablename__ = "sipdo_attempts"
    __table_args__ = (UniqueConstraint("run_id", "task_id", "prompt_version_id", "role"),)

    seq: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="sipdo_runs.run_id", index=True, max_length=200)
    task_id: str = Field(max_length=200)
    prompt_version_id: str = Field(max_length=200)
    role: str = Field(max_length=40)
    answer: str = Field(sa_column=Column(Text, nullable=False))  # text form (sipdo.answers)
    passed: bool
    score: float
    feedback: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    # A structured answer as it was (None for a string answer).
    answer_json: Any | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class UsageRow(SQLModel, table=True):
    """Model usage of one call (or one batch of calls) by one role."""

    __tablename__ = "sipdo_model_usage"
    __table_args__ = (UniqueConstraint("run_id", "call_id"),)

    seq: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="sipdo_runs.run_id", index=True, max_length=200)
    call_id: str | None = Field(default=None, max_length=200)
    role: str = Field(max_length=40)
    model: str = Field(max_length=300)
    calls: int
    input_tokens: int
    output_tokens: int
    latency_s: float
    created_at: datetime = Field(default_factory=utcnow)


class PromptModelRoundRow(SQLModel, table=True):
    """One round of training a prompt model (TRPrompt) on this run's textual rewards.

    A prompt model trained on several runs has one row per run and round, all with
    the same ``training_id`` (the model's output directory decides it).
    """

    __tablename__ = "sipdo_prompt_model_rounds"
    __table_args__ = (UniqueConstraint("run_id", "training_id", "round"),)

    seq: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="sipdo_runs.run_id", index=True, max_length=200)
    training_id: str = Field(max_length=200)
    round: int
    base_model: str = Field(sa_column=Column(Text, nullable=False))
    output_dir: str = Field(sa_column=Column(Text, nullable=False))
    train_examples: int
    train_loss: float | None = None
    heldout_tasks: int
    heldout_reward: float | None = None
    heldout_pass_rate: float | None = None
    optimal_reward: str = Field(sa_column=Column(Text, nullable=False))
    seconds: float
    created_at: datetime = Field(default_factory=utcnow)


TABLES = (
    RunRow,
    PromptVersionRow,
    TaskRow,
    TaskVerdictRow,
    AttemptRow,
    UsageRow,
    PromptModelRoundRow,
)
TABLE_NAMES: tuple[str, ...] = tuple(str(t.__tablename__) for t in TABLES)
