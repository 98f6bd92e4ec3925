"""The checkpoint file of ``sipdo run``: LangGraph's SQLite saver, patient with locks.

Another process holding the checkpoint database's write lock (a second
``sipdo`` reading it, a backup tool, a user's ``sqlite3`` shell left in a
transaction) makes LangGraph's saver fail the run with ``database is locked``
once SQLite's busy timeout is over. ``PatientSqliteSaver`` rolls the failed
statement back and makes the whole call again under the run store's
``RetryPolicy`` (``SIPDO_STORE_RETRY_S``); a lock still held when the limit runs
out, or a full disk (not retried: it does not pass by itself), raises
``StoreUnavailableError`` naming the file. SQLite commits are atomic, so a write
that failed leaves the last checkpoint whole, and ``--resume`` continues from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from sipdo.errors import StoreUnavailableError
from sipdo.retry import RetryClock, RetryPolicy
from sipdo.store.faults import wait_or_give_up

R = TypeVar("R")


def _locked(exc: sqlite3.Error) -> bool:
    return "locked" in str(exc) or "busy" in str(exc).lower()


def _disk_full(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return "disk is full" in text or "No space left" in text


class PatientSqliteSaver(AsyncSqliteSaver):
    """``AsyncSqliteSaver`` whose reads and writes wait out a locked database."""

    def __init__(self, conn: aiosqlite.Connection, *, path: Path, retry: RetryPolicy) -> None:
        super().__init__(conn)
        self.path = path
        self.retry = retry

    async def _patiently(self, call: Callable[[], Awaitable[R]]) -> R:
        clock = RetryClock()
        while True:
            try:
                return await call()
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    await self.conn.rollback()  # end the failed statement's transaction
                await asyncio.sleep(self._after_failure(exc, clock))

    def _after_failure(self, exc: sqlite3.Error, clock: RetryClock) -> float:
        where = f"checkpoint file {self.path}"
        if _disk_full(exc):
            raise StoreUnavailableError(
                f"{where}: the disk is full ({exc}); the last checkpoint is kept whole"
            ) from exc
        if not _locked(exc):
            raise exc
        return wait_or_give_up(self.retry, clock, where, str(exc), exc)

    async def setup(self) -> None:
        await self._patiently(super().setup)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        get = super().aget_tuple
        return await self._patiently(lambda: get(config))

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        put = super().aput
        return await self._patiently(lambda: put(config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        put_writes = super().aput_writes
        await self._patiently(lambda: put_writes(config, writes, task_id, task_path))


@asynccontextmanager
async def open_checkpoints(path: Path, retry: RetryPolicy) -> AsyncIterator[PatientSqliteSaver]:
    """A ``PatientSqliteSaver`` on the SQLite file ``path`` (created if missing).

    SQLite's own busy timeout is kept short of the retry limit so the wait is
    ours to log and bound."""
    lock_wait = max(0.1, min(5.0, retry.retry_for_s))
    async with aiosqlite.connect(str(path), timeout=lock_wait) as conn:
        yield PatientSqliteSaver(conn, path=path, retry=retry)
