"""The run store: SQLModel tables and ``RunStore`` (SQLite by default, any SQLAlchemy URL)."""

from __future__ import annotations

from sipdo.store.base import TASK_STATUSES, BaseRunStore, TaskStatus
from sipdo.store.evals import EvalRecord, EvalResultRecord
from sipdo.store.export import FORMATS as EXPORT_FORMATS
from sipdo.store.records import (
    AttemptRecord,
    PromptModelRoundRecord,
    PromptVersionRecord,
    RunRecord,
    TaskRecord,
    UsageRecord,
    VerdictRecord,
)
from sipdo.store.sql import RunStore, default_url, sipdo_home

__all__ = [
    "EXPORT_FORMATS",
    "TASK_STATUSES",
    "AttemptRecord",
    "BaseRunStore",
    "EvalRecord",
    "EvalResultRecord",
    "PromptModelRoundRecord",
    "PromptVersionRecord",
    "RunRecord",
    "RunStore",
    "TaskRecord",
    "TaskStatus",
    "UsageRecord",
    "VerdictRecord",
    "default_url",
    "sipdo_home",
]
