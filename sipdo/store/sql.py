"""``RunStore``: the run store on any SQLAlchemy database (SQLite file by default)."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError
from sqlmodel import Session, SQLModel, col, create_engine, select

from sipdo.answers import Answer, answer_text, check_answer
from sipdo.errors import ConfigurationError, RunNotFoundError, StoreError
from sipdo.retry import RetryPolicy
from sipdo.store.base import TASK_STATUSES, BaseRunStore, TaskStatus
from sipdo.store.eval_tables import EVAL_TABLE_NAMES
from sipdo.store.evals import EVAL_RETRIED, EvalRuns
from sipdo.store.faults import retry_methods
from sipdo.store.reads import StoreReads
from sipdo.store.tables import (
    TABLE_NAMES,
    AttemptRow,
    PromptModelRoundRow,
    PromptVersionRow,
    RunRow,
    TaskRow,
    TaskVerdictRow,
    UsageRow,
    utcnow,
)
from sipdo.store.training import PromptModelRounds

# Long enough to ride out a PostgreSQL restart or a writer holding SQLite's lock.
DEFAULT_RETRY = RetryPolicy(retry_for_s=60.0, backoff_s=0.5, max_backoff_s=5.0)
RETRY_ENV = "SIPDO_STORE_RETRY_S"
# The public calls, each one transaction (or one read) that can be made again whole.
RETRIED = (
    "create_run",
    "record_prompt_version",
    "record_task",
    "record_attempt",
    "record_usage",
    "finish_run",
    "mark_running",
    "delete_run",
    "list_runs",
    "get_run",
    "prompt_lineage",
    "score_table",
    "tasks",
    "attempts",
    "usage",
    *EVAL_RETRIED,
)

# A verified task keeps its status: a later "rejected" (e.g. a duplicate generated
# again) is kept in its verdict history but never un-accepts it.
VERIFIED = ("seed", "accepted")


def sipdo_home() -> Path:
    """``$SIPDO_HOME`` or ``~/.sipdo``: where the default database and checkpoints live."""
    return Path(os.environ.get("SIPDO_HOME") or Path.home() / ".sipdo")


def default_url() -> str:
    """The default store: ``sqlite:///<sipdo_home>/runs.db``."""
    return f"sqlite:///{sipdo_home() / 'runs.db'}"


def _json(value: Any, what: str) -> Any:
    """``value`` as plain JSON data, or ConfigurationError naming ``what``."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{what} is not JSON-serializable: {exc}") from exc


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    """A unified diff, one change per line whether or not the texts end with a newline."""
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=old_name, tofile=new_name, lineterm=""
    )
    text = "\n".join(lines)
    return text + "\n" if text else ""


def default_retry() -> RetryPolicy:
    """``DEFAULT_RETRY`` with its limit taken from ``SIPDO_STORE_RETRY_S`` (seconds) when set."""
    raw = os.environ.get(RETRY_ENV, "").strip()
    if not raw:
        return DEFAULT_RETRY
    try:
        seconds = float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{RETRY_ENV} must be a number of seconds, got {raw!r}") from exc
    if not seconds >= 0:
        raise ConfigurationError(f"{RETRY_ENV} must not be negative, got {raw!r}")
    return RetryPolicy(seconds, DEFAULT_RETRY.backoff_s, DEFAULT_RETRY.max_backoff_s)


def _make_engine(url: str, lock_wait_s: float) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"not a database URL: {url!r} ({exc})") from exc
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the directory of {database}: {exc}") from exc
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": lock_wait_s}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
        raise ConfigurationError(
            f"no driver for {parsed.drivername!r}: {exc} "
            "(for PostgreSQL install sipdo[postgres] and use postgresql+psycopg://)"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", partial(_sqlite_pragmas, busy_ms=int(lock_wait_s * 1000)))
    return engine


def add_missing_columns(engine: Engine, tables: Sequence[Any]) -> None:
    """Add nullable columns a newer sipdo defines to tables an older one created.

    Only additions are ever needed (new columns are nullable), so this is the whole
    migration story: no column is renamed, retyped or dropped.
    """
    inspector = inspect(engine)
    for table in tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in have or not column.nullable:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            with engine.begin() as conn:
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, *, busy_ms: int) -> None:
    # WAL lets `sipdo show` read while a run writes; foreign keys are off by default.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.close()


class RunStore(StoreReads, PromptModelRounds, EvalRuns, BaseRunStore):
    """The run store on ``url`` (any SQLAlchemy URL; default: ``default_url()``).

    Creates its tables if missing. Safe to share between threads; each call
    is one transaction. A call that meets a passing database fault (SQLite
    locked, PostgreSQL restarting) is made again under ``retry`` (default: for
    up to 60 s after the first failure, or ``SIPDO_STORE_RETRY_S`` seconds; SQLite
    first waits up to 30 s for a lock, or ``retry.retry_for_s`` if less); a full
    disk, or a fault still there after that, raises ``StoreUnavailableError``
    (see ``sipdo.store.faults``).
    """

    def __init__(self, url: str | None = None, *, retry: RetryPolicy | None = None) -> None:
        self.url = url or default_url()
        self.retry = retry if retry is not None else default_retry()
        self._engine = _make_engine(self.url, max(0.1, min(30.0, self.retry.retry_for_s)))
        self._closed = False
        try:
            tables = [SQLModel.metadata.tables[n] for n in (*TABLE_NAMES, *EVAL_TABLE_NAMES)]
            SQLModel.metadata.create_all(self._engine, tables=tables)
            add_missing_columns(self._engine, tables)
        except SQLAlchemyError as exc:
            self._engine.dispose()
            raise StoreError(f"cannot open the run store at {self._safe_url()}: {exc}") from exc

    def _safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        if self._closed:
            raise StoreError("the run store is closed")
        try:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"run store {self._safe_url()}: {exc}") from exc

    @staticmethod
    def _run(session: Session, run_id: str) -> RunRow:
        row = session.get(RunRow, run_id)
        if row is None:
            raise RunNotFoundError(f"no run {run_id!r}")
        return row

    def _upsert(self, write: Any) -> None:
        # A concurrent writer may insert the same key between our read and insert: retry once.
        try:
            with self._session() as session:
                write(session)
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
            with self._session() as session:
                write(session)

    # -- writes ---------------------------------------------------------------
    def create_run(self, run_id: str, config: Mapping[str, Any], initial_prompt: str) -> None:
        if not isinstance(run_id, str) or not run_id.strip():
            raise ConfigurationError("run_id must be a non-empty string")
        data: dict[str, Any] = _json(dict(config), "run config")

        def write(session: Session) -> None:
            row = session.get(RunRow, run_id)
            if row is None:
                session.add(RunRow(run_id=run_id, config=data, initial_prompt=initial_prompt))
            else:
                row.config = {**data, **row.config}

        self._upsert(write)

    def record_prompt_version(
        self,
        run_id: str,
        version_id: str,
        text: str,
        parent_id: str | None,
        accepted: bool,
        scores: Mapping[str, float],
        feedback: str,
        iteration: int,
        *,
        parent_ids: Sequence[str] | None = None,
        components: Mapping[str, str] | None = None,
        operator: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        meta_data = None if meta is None else _json(dict(meta), "prompt version meta")
        comp_data = None if components is None else _json(dict(components), "components")
        parents = None if parent_ids is None else [str(p) for p in parent_ids]
        try:
            clean_scores = {str(k): float(v) for k, v in dict(scores).items()}
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"prompt scores must be numbers: {exc}") from exc

        def write(session: Session) -> None:
            self._run(session, run_id)
            stmt = select(PromptVersionRow).where(
                PromptVersionRow.run_id == run_id, PromptVersionRow.version_id == version_id
            )
            row = session.exec(stmt).first()
            if row is not None:
                row.accepted, row.scores, row.feedback = accepted, clean_scores, feedback
                if meta_data is not None:
                    row.meta = {**(row.meta or {}), **meta_data}
                return
            parent_text = ""
            if parent_id is not None:
                parent = session.exec(
                    select(PromptVersionRow).where(
                        PromptVersionRow.run_id == run_id, PromptVersionRow.version_id == parent_id
                    )
                ).first()
                if parent is None:
                    raise StoreError(f"run {run_id!r}: parent prompt {parent_id!r} not recorded")
                parent_text = parent.text
            diff = unified_diff(parent_text, text, parent_id or "/dev/null", version_id)
            session.add(
                PromptVersionRow(
                    run_id=run_id,
                    version_id=version_id,
                    parent_id=parent_id,
                    text=text,
                    diff=diff,
                    accepted=accepted,
                    scores=clean_scores,
                    feedback=feedback,
                    iteration=iteration,
                    parent_ids=parents,
                    components=comp_data,
                    operator=operator,
                    meta=meta_data,
                )
            )

        self._upsert(write)

    def record_task(
        self,
        run_id: str,
        task: Mapping[str, Any],
        status: TaskStatus,
        reason: str,
        verdict: Mapping[str, Any] | None,
        difficulty: int,
        weakness: str,
    ) -> None:
        if status not in TASK_STATUSES:
            raise ConfigurationError(f"task status {status!r}; expected one of {TASK_STATUSES}")
        task_id = task.get("id") if isinstance(task, Mapping) else None
        if not isinstance(task_id, str) or not task_id:
            raise ConfigurationError("a task must be a mapping with a non-empty string 'id'")
        task_data = _json(dict(task), f"task {task_id!r}")
        verdict_data = None if verdict is None else _json(dict(verdict), "verdict")
        digest = hashlib.sha256(
            json.dumps([status, reason, verdict_data], sort_keys=True).encode()
        ).hexdigest()

        def write(session: Session) -> None:
            self._run(session, run_id)
            row = session.exec(
                select(TaskRow).where(TaskRow.run_id == run_id, TaskRow.task_id == task_id)
            ).first()
            if row is None:
                session.add(
                    TaskRow(
                        run_id=run_id,
                        task_id=task_id,
                        task=task_data,
                        status=status,
                        reason=reason,
                        difficulty=difficulty,
                        weakness=weakness,
                    )
                )
            elif not (row.status in VERIFIED and status == "rejected"):
                row.task, row.status, row.reason = task_data, status, reason
                row.difficulty, row.weakness, row.updated_at = difficulty, weakness, utcnow()
            seen = session.exec(
                select(TaskVerdictRow.seq).where(
                    TaskVerdictRow.run_id == run_id,
                    TaskVerdictRow.task_id == task_id,
                    TaskVerdictRow.digest == digest,
                )
            ).first()
            if seen is None:
                session.add(
                    TaskVerdictRow(
                        run_id=run_id,
                        task_id=task_id,
                        digest=digest,
                        status=status,
                        reason=reason,
                        verdict=verdict_data,
                    )
                )

        self._upsert(write)

    def record_attempt(
        self,
        run_id: str,
        task_id: str,
        prompt_version_id: str,
        role: str,
        answer: Answer,
        passed: bool,
        score: float,
        feedback: str,
    ) -> None:
        answer = check_answer(answer, source="record_attempt")
        structured = None if isinstance(answer, str) else answer

        def write(session: Session) -> None:
            self._run(session, run_id)
            row = session.exec(
                select(AttemptRow).where(
                    AttemptRow.run_id == run_id,
                    AttemptRow.task_id == task_id,
                    AttemptRow.prompt_version_id == prompt_version_id,
                    AttemptRow.role == role,
                )
            ).first()
            if row is None:
                row = AttemptRow(
                    run_id=run_id,
                    task_id=task_id,
                    prompt_version_id=prompt_version_id,
                    role=role,
                    answer=answer_text(answer),
                    passed=passed,
                    score=score,
                    feedback=feedback,
                    answer_json=structured,
                )
                session.add(row)
            else:
                row.answer, row.passed, row.score = answer_text(answer), passed, score
                row.feedback, row.answer_json = feedback, structured

        self._upsert(write)

    def record_usage(
        self,
        run_id: str,
        role: str,
        model: str,
        calls: int,
        input_tokens: int,
        output_tokens: int,
        latency_s: float,
        call_id: str | None = None,
    ) -> None:
        if min(calls, input_tokens, output_tokens) < 0 or latency_s < 0:
            raise ConfigurationError("usage counts and latency must not be negative")

        def write(session: Session) -> None:
            self._run(session, run_id)
            if call_id is not None:
                seen = session.exec(
                    select(UsageRow.seq).where(
                        UsageRow.run_id == run_id, UsageRow.call_id == call_id
                    )
                ).first()
                if seen is not None:
                    return
            session.add(
                UsageRow(
                    run_id=run_id,
                    call_id=call_id,
                    role=role,
                    model=model,
                    calls=calls,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    latency_s=latency_s,
                )
            )

        self._upsert(write)

    def finish_run(self, run_id: str, status: str, best_prompt: str, stop_reason: str) -> None:
        with self._session() as session:
            row = self._run(session, run_id)
            row.status, row.best_prompt, row.stop_reason = status, best_prompt, stop_reason
            row.finished_at = utcnow()

    def mark_running(self, run_id: str, owner: Mapping[str, Any]) -> None:
        data = _json(dict(owner), "run owner")
        with self._session() as session:
            row = self._run(session, run_id)
            row.config = {**row.config, "owner": data}
            row.status, row.stop_reason, row.finished_at = "running", None, None

    def delete_run(self, run_id: str) -> None:
        """Remove a run and everything recorded for it."""
        with self._session() as session:
            run = self._run(session, run_id)
            tables = (UsageRow, AttemptRow, TaskVerdictRow, TaskRow, PromptVersionRow)
            for table in (PromptModelRoundRow, *tables):
                for row in session.exec(select(table).where(col(table.run_id) == run_id)):
                    session.delete(row)
            session.flush()
            session.delete(run)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._engine.dispose()


retry_methods(RunStore, RETRIED)
