"""Which database errors pass by themselves, and the retry loop around store calls.

Passing faults are retried under the store's ``RetryPolicy``: SQLite's
``database is locked`` (another process holds the write lock longer than the
busy timeout, or a read snapshot went stale under a writer), and for
PostgreSQL a connection refused or lost (the server restarting), an
administrator shutdown, "cannot connect now", a serialization failure or a
deadlock. A full disk is not retried: it does not pass by itself, and waiting
would only delay the message. Either way the failed call's transaction was
rolled back, so nothing of it is kept; every store write is idempotent, so the
whole call is simply made again.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, Protocol, TypeVar

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError

from sipdo.errors import StoreError, StoreUnavailableError
from sipdo.retry import RetryClock, RetryPolicy, next_wait

log = logging.getLogger("sipdo.store")

P = ParamSpec("P")
R = TypeVar("R")

_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL = 5, 6, 13
# SQLSTATE classes / codes of PostgreSQL that a later attempt can get past.
_PG_PASSING_CLASSES = ("08",)  # connection exception
_PG_PASSING = {"57P01", "57P02", "57P03", "40001", "40P01", "53300"}
_PG_DISK_FULL = "53100"


def _origin(exc: BaseException) -> BaseException | None:
    """The DB-API error under a ``StoreError`` (raised ``from`` a SQLAlchemy error)."""
    cause = exc.__cause__
    if isinstance(cause, DBAPIError):
        return cause.orig
    return cause


def disk_full(exc: BaseException) -> bool:
    """True when the write failed because the database's disk is full."""
    orig = _origin(exc)
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        return (code is not None and code & 0xFF == _SQLITE_FULL) or "disk is full" in str(orig)
    return getattr(orig, "sqlstate", None) == _PG_DISK_FULL or "No space left" in str(orig)


def passing(exc: BaseException) -> bool:
    """True for a database fault a later attempt can get past (see the module docstring)."""
    cause = exc.__cause__
    if isinstance(cause, DisconnectionError | InterfaceError):
        return True
    if isinstance(cause, DBAPIError) and cause.connection_invalidated:
        return True
    orig = _origin(exc)
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
        return "database is locked" in str(orig) or "database table is locked" in str(orig)
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate in _PG_PASSING or sqlstate.startswith(_PG_PASSING_CLASSES)
    # psycopg reports a refused or dropped connection without a SQLSTATE.
    return type(orig).__name__ in ("OperationalError", "InterfaceError") and not disk_full(exc)


class Retrying(Protocol):
    """What ``retried`` needs of the store it wraps."""

    retry: RetryPolicy

    def _safe_url(self) -> str: ...


def retried(method: Callable[P, R]) -> Callable[P, R]:
    """Make a store method wait out passing faults; raise ``StoreUnavailableError`` for a
    full disk at once and for a passing fault still there when the retry limit runs out."""

    @wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        store: Retrying = args[0]  # type: ignore[assignment]  # a method: args[0] is self
        clock = RetryClock()
        while True:
            try:
                return method(*args, **kwargs)
            except StoreError as exc:
                wait = _after_failure(store, exc, clock)
            time.sleep(wait)

    return wrapper


def _after_failure(store: Retrying, exc: StoreError, clock: RetryClock) -> float:
    where = f"run store {store._safe_url()}"
    if disk_full(exc):
        raise StoreUnavailableError(
            f"{where}: the disk is full ({_origin(exc)}); nothing of this write was kept"
        ) from exc
    if not passing(exc):
        raise exc
    clock.last_error = str(_origin(exc) or exc).strip().splitlines()[0][:300]
    return wait_or_give_up(store.retry, clock, where, clock.last_error, exc)


def wait_or_give_up(
    policy: RetryPolicy, clock: RetryClock, where: str, error: str, exc: BaseException
) -> float:
    """Count one failed attempt of a store call and return how long to wait before the
    next; ``StoreUnavailableError`` (from ``exc``) once ``policy``'s time is spent.
    Shared by the run store's calls and the checkpoint file's."""
    now = time.monotonic()
    clock.attempts += 1
    if clock.first_failure is None:
        clock.first_failure = now
    wait = next_wait(policy, clock, now, None)
    if wait is None:
        raise StoreUnavailableError(
            f"{where} unavailable: {error}; gave up after {clock.attempts} "
            f"attempt(s) over {now - clock.first_failure:.0f} s "
            f"(retry limit {policy.retry_for_s:g} s, SIPDO_STORE_RETRY_S)"
        ) from exc
    log.warning("%s: %s; retry %d in %.1f s", where, error, clock.attempts, wait)
    return wait


def retry_methods(cls: type[Any], names: tuple[str, ...]) -> None:
    """Wrap ``cls``'s methods ``names`` (inherited ones included) with ``retried``."""
    for name in names:
        setattr(cls, name, retried(getattr(cls, name)))
