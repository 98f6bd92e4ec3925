"""Streaming reads and writes of dataset files: JSONL / Parquet rows in, verdict JSONL out.

Memory stays bounded whatever the file size: rows are read one at a time
(Parquet one record batch at a time), verdicts are appended and flushed one
line at a time, resuming reads the old output line by line, and the tasks
file of ``solutions`` mode is indexed by byte offset (JSONL) rather than
held. A line that is not JSON, not UTF-8 or not an object is a ``Row`` with
an ``error``, never an exception: the dataset layer reports it as a verdict.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sipdo.errors import ConfigurationError

PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class Row:
    """One record of an input file: its 0-based number and its data, or why it is unreadable."""

    index: int
    data: dict[str, Any] | None
    error: str | None = None
    text: str = ""  # the raw line of an unreadable row (for its content id)


def canonical(data: Any) -> str:
    """A stable JSON text of ``data`` (sorted keys), for content ids."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def row_from_line(index: int, line: bytes | str) -> Row:
    """Parse one JSONL line (not blank) into a ``Row``.

    The line terminator is not part of the row (the Ray engine's reader drops it), so
    an unreadable row has the same text, and content id, whichever engine read it."""
    line = line.rstrip(b"\r\n") if isinstance(line, bytes) else line.rstrip("\r\n")
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
    except UnicodeDecodeError as exc:
        return Row(index, None, f"not UTF-8 text ({exc.reason})", repr(line))
    try:
        data = json.loads(text)
    except ValueError as exc:
        return Row(index, None, f"invalid JSON: {exc}", text)
    if not isinstance(data, dict):
        return Row(index, None, f"a row must be a JSON object, got {type(data).__name__}", text)
    return Row(index, data)


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def _parquet(path: Path) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ConfigurationError(
            f"reading {path} needs pyarrow: pip install 'sipdo[parquet]'"
        ) from exc
    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read Parquet file {path}: {exc}") from exc


def _open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc


def read_rows(path: Path, *, batch_rows: int = 256) -> Iterator[Row]:
    """The records of a JSONL or Parquet file, in order; blank JSONL lines are not records."""
    if is_parquet(path):
        index = 0
        for batch in _parquet(path).iter_batches(batch_size=batch_rows):
            for data in batch.to_pylist():
                yield Row(index, data)
                index += 1
        return
    with _open(path) as handle:
        index = 0
        for line in handle:
            if line.strip():
                yield row_from_line(index, line)
                index += 1


def count_rows(path: Path) -> int:
    """How many records ``read_rows`` will yield (for a progress total); one streaming pass."""
    if is_parquet(path):
        return int(_parquet(path).metadata.num_rows)
    with _open(path) as handle:
        return sum(1 for line in handle if line.strip())


def indexed_rows(path: Path) -> Iterator[tuple[int, Row]]:
    """``read_rows`` with each JSONL row's byte offset (-1 for Parquet rows)."""
    if is_parquet(path):
        yield from ((-1, row) for row in read_rows(path))
        return
    with _open(path) as handle:
        index, offset = 0, 0
        for line in handle:
            if line.strip():
                yield offset, row_from_line(index, line)
                index += 1
            offset += len(line)


def row_at(path: Path, offset: int, index: int) -> Row:
    """Re-read the JSONL row that starts at byte ``offset``."""
    with _open(path) as handle:
        handle.seek(offset)
        return row_from_line(index, handle.readline())


def prepare_resume(
    path: Path, *, retry: frozenset[str], keep: Callable[[dict[str, Any]], None] | None = None
) -> Counter[str]:
    """Keep the finished verdicts of an earlier run of ``path``; return their content ids.

    The file is rewritten without a torn last line (a killed run) and without
    verdicts whose ``status`` is in ``retry`` (infrastructure errors: those
    rows are verified again); ``keep`` sees every verdict kept. Counts, not a
    set: identical input rows share a content id and each needs its own verdict.
    """
    done: Counter[str] = Counter()
    if not path.exists():
        return done
    scratch = path.with_name(path.name + ".resume-tmp")
    with _open(path) as old, scratch.open("wb") as new:
        for line in old:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn line from a killed run: that row runs again
            if not isinstance(record, dict) or not line.endswith(b"\n"):
                continue
            if record.get("status") in retry or not isinstance(record.get("content_id"), str):
                continue
            done[record["content_id"]] += 1
            new.write(line)
            if keep is not None:
                keep(record)
        new.flush()
        os.fsync(new.fileno())
    os.replace(scratch, path)
    return done


class VerdictWriter:
    """Appends verdict records to a JSONL file, one flushed line each."""

    def __init__(self, path: Path, *, append: bool) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("a" if append else "w", encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot write {path}: {exc}") from exc
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> VerdictWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
