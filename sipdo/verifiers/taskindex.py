"""The tasks of ``solutions`` mode, found by task id without holding the tasks file.

A JSONL tasks file is indexed by byte offset in one streaming pass (only ids
and offsets are kept) and a task is re-read when a sample asks for it, with
a small cache: samples usually come grouped by task. A Parquet tasks file is
held in memory (Parquet has no cheap seek to one row). A task is found by the
id its row carries (``task_id`` / ``id``) or by its ``CodeTask.id``
(``HumanEval-0`` as well as ``HumanEval/0``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from sipdo.verifiers.datafiles import Row, indexed_rows, row_at
from sipdo.verifiers.formats import RowError, remap, row_task_id, task_from_row
from sipdo.verifiers.types import CodeTask

_CACHE = 64


class TaskIndex:
    """``index(task_id) -> CodeTask``; an unknown id or a broken task row raises ``RowError``.

    ``unreadable`` lists the rows that could not be read at all (no id to find them
    by): no sample can name them, so only this list tells the user they were lost.
    """

    def __init__(
        self, path: Path, *, fmt: str = "auto", mapping: Mapping[str, str] | None = None
    ) -> None:
        self.path = path
        self.fmt = fmt
        self.mapping = dict(mapping or {})
        self._where: dict[str, tuple[int, int]] = {}  # id -> (offset, row index)
        self._held: dict[str, Row] = {}  # Parquet rows
        self._cache: OrderedDict[str, CodeTask] = OrderedDict()
        self.unreadable: list[str] = []  # rows without an id to find them by, and why
        for offset, row in indexed_rows(path):
            if row.data is None:  # samples naming it get "no task"; the summary says so
                self.unreadable.append(f"row {row.index + 1}: {row.error}")
                continue
            ids = {row_task_id(remap_or_raw(row.data, self.mapping))}
            with suppress(RowError):  # still findable by its own id; the sample says why
                ids.add(self._convert(row).id)
            for tid in ids - {None}:
                if offset >= 0:
                    self._where.setdefault(str(tid), (offset, row.index))
                else:
                    self._held.setdefault(str(tid), row)

    def __len__(self) -> int:
        return len(self._where) + len(self._held)

    def _convert(self, row: Row) -> CodeTask:
        assert row.data is not None
        return task_from_row(remap(row.data, self.mapping), self.fmt)

    def __call__(self, task_id: Any) -> CodeTask:
        key = str(task_id)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if key in self._held:
            row = self._held[key]
        elif key in self._where:
            row = row_at(self.path, *self._where[key])
        else:
            raise RowError(f"no task with task_id {task_id!r} in {self.path.name}")
        if row.data is None:
            raise RowError(f"the task row of {task_id!r} is unreadable: {row.error}")
        try:
            task = self._convert(row)
        except RowError as exc:
            raise RowError(f"task {task_id!r} cannot be read: {exc}") from exc
        self._cache[key] = task
        if len(self._cache) > _CACHE:
            self._cache.popitem(last=False)
        return task


def remap_or_raw(data: Mapping[str, Any], mapping: Mapping[str, str]) -> Mapping[str, Any]:
    """``remap`` when it can, else the row as is (an id is still worth finding)."""
    try:
        return remap(data, mapping)
    except RowError:
        return data
