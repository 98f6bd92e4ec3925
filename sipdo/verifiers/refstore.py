"""Reference sides kept on disk, so grading the same tasks again skips their reference runs.

Grading a sample (``verify_solution``) needs the task's reference side: the
reference run on the tests' calls and the generated inputs, one sandboxed run
per task. Within one process it is cached per sandbox (``api.py``). A user who
grades many sample files against the same tasks (every checkpoint of a model,
against the same benchmark) pays it again in every process; a
``ReferenceStore`` keeps it in a SQLite file instead.

A stored side is reused only for the very same run: the key covers every file
the run is sent (the task's reference and tests, the harness's own sources,
the names of Hypothesis's tables), its request (entry point, budgets, input counts, the
task's strategy and precondition), the task's argument policy, the format
and sipdo's version, and the sandbox's ``runtime_id`` (the interpreter and
its libraries, e.g. a Docker image's id). A sandbox whose runtime is unknown
keeps nothing. Only finished runs whose tests all passed are kept: a failure
may come from a loaded machine and is worth another try. The file holds JSON,
never pickles; a row that cannot be read is dropped and the run made again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sipdo
from sipdo.errors import ConfigurationError
from sipdo.sandbox.base import Sandbox
from sipdo.verifiers import unicode_tables
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.reference import Case, ReferenceRun, reference_request
from sipdo.verifiers.types import CodeTask

log = logging.getLogger(__name__)

FORMAT = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS reference_sides (
    key TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def _digest(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def store_key(task: CodeTask, config: VerifierConfig, runtime: str) -> str:
    """The key of ``task``'s reference side under ``config`` in ``runtime``."""
    req = reference_request(task, config)
    parts = [
        FORMAT,
        sipdo.__version__,
        runtime,
        task.argument_policy,
        req.script,
        req.request,
        req.timeout_s,
        req.output_bytes,
        sorted(
            # Hypothesis's tables: named by the Unicode version, gzipped with a time stamp.
            (name, "" if name.startswith(unicode_tables.STORAGE) else _digest(content))
            for name, content in req.files.items()
        ),
    ]
    return _digest(json.dumps(parts, sort_keys=True, separators=(",", ":")))


def dumps(ref: ReferenceRun) -> str:
    body = asdict(ref)
    body["tests"] = {t: list(v) for t, v in ref.tests.items()}
    return json.dumps(body, separators=(",", ":"))


def loads(text: str) -> ReferenceRun:
    """A stored side; ``ValueError`` (or ``KeyError``/``TypeError``) when it is not one."""
    body: dict[str, Any] = json.loads(text)
    tests = {str(t): (str(o), str(m)) for t, (o, m) in body["tests"].items()}
    cases = [Case(str(c["group"]), dict(c["inp"]), dict(c["expected"])) for c in body["cases"]]
    return ReferenceRun(
        tests=tests,
        exit_code=int(body["exit_code"]),
        cases=cases,
        dropped={str(k): int(v) for k, v in body["dropped"].items()},
        unencodable_calls=int(body["unencodable_calls"]),
        stderr=str(body["stderr"]),
        complete=bool(body["complete"]),
        ending=str(body["ending"]),
        contract=dict(body["contract"]),
        policy=body["policy"],
    )


def worth_keeping(ref: ReferenceRun) -> bool:
    """A finished run whose tests all passed (anything else may be the machine's fault)."""
    return ref.complete and ref.exit_code == 0 and not ref.failing_tests


class ReferenceStore:
    """Reference sides in a SQLite file; safe to share between threads and processes.

    ``hits``, ``misses`` and ``kept`` count this object's lookups and writes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.hits = self.misses = self.kept = 0
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(
                f"reference cache {self.path}: cannot be opened as a SQLite file ({exc})"
            ) from exc

    def get(self, task: CodeTask, config: VerifierConfig, sandbox: Sandbox) -> ReferenceRun | None:
        """The stored side of ``task`` for runs in ``sandbox``, or ``None``."""
        runtime = sandbox.runtime_id()
        if runtime is None:
            return None
        key = store_key(task, config, runtime)
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT body FROM reference_sides WHERE key = ?", (key,)
                ).fetchone()
            except sqlite3.Error as exc:
                log.warning(
                    "reference cache %s: cannot read (%s); running the reference", self.path, exc
                )
                self.misses += 1
                return None
            if row is None:
                self.misses += 1
                return None
            try:
                ref = loads(row[0])
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("reference cache %s: dropping an unreadable entry (%s)", self.path, exc)
                self._db.execute("DELETE FROM reference_sides WHERE key = ?", (key,))
                self._db.commit()
                self.misses += 1
                return None
            self.hits += 1
            return ref

    def put(
        self, task: CodeTask, config: VerifierConfig, sandbox: Sandbox, ref: ReferenceRun
    ) -> bool:
        """Keep ``ref`` if it is worth keeping and the sandbox's runtime is known."""
        runtime = sandbox.runtime_id()
        if runtime is None or not worth_keeping(ref):
            return False
        key = store_key(task, config, runtime)
        with self._lock:
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO reference_sides (key, body, created) VALUES (?, ?, ?)",
                    (key, dumps(ref), time.time()),
                )
                self._db.commit()
            except sqlite3.Error as exc:
                log.warning("reference cache %s: cannot write (%s)", self.path, exc)
                return False
            self.kept += 1
            return True

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM reference_sides").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


_open: dict[Path, ReferenceStore] = {}
_open_lock = threading.Lock()


def store_at(path: str | Path) -> ReferenceStore:
    """One ``ReferenceStore`` per file in this process (workers of a run share it)."""
    resolved = Path(path).expanduser().resolve()
    with _open_lock:
        store = _open.get(resolved)
        if store is None:
            store = _open[resolved] = ReferenceStore(resolved)
        return store
