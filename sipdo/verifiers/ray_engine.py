"""``engine="ray"``: the per-row work of ``verify_dataset`` on a Ray cluster, through Ray Data.

Ray Data reads the input (JSONL as text lines, Parquet as records) and
``map_batches`` hands batches to a pool of actors (``jobs`` of them, one CPU
each). Each actor opens one sandbox when it starts and closes it when it
stops, and turns each row into its verdict record with the same
``prepare`` / ``averify_item`` as the local engine, so both engines write
the same verdicts. The driver streams the results back in input order
(``preserve_order``) and is the only writer of the output. A worker killed
mid-batch: Ray restarts the actor and runs the batch again
(``max_restarts`` / ``max_task_retries``); a batch's rows reach the driver
only when the batch completes, so no row is lost or written twice.

Every node needs sipdo with the ``ray`` extra, the input files at the same
path (shared storage, or the same copy on each node) and a sandbox backend:
the sandbox image on each node for Docker (``sipdo sandbox build-image``
there, or pull it from your registry). See the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.verifiers.datafiles import Row, is_parquet, row_from_line
from sipdo.verifiers.rowcheck import RowSpec, averify_item, prepare
from sipdo.verifiers.taskindex import TaskIndex
from sipdo.verifiers.watch import WatchedSandbox

BATCH_ROWS = 8


class VerifyWorker:
    """A Ray Data actor: one sandbox, one row at a time, a batch of rows in, records out."""

    def __init__(
        self, spec: RowSpec, tasks: str, solutions: str | None, kind: str, skip: frozenset[str]
    ) -> None:
        from sipdo.sandbox.factory import open_sandbox

        self.spec = spec
        self.skip = skip
        self.parquet = is_parquet(Path(solutions or tasks))
        self.tasks = (
            TaskIndex(Path(tasks), fmt=spec.fmt, mapping=spec.mapping) if solutions else None
        )
        extra: dict[str, Any] = {"pool_size": 1} if kind in ("auto", "docker") else {}
        self.inner = open_sandbox(kind, max_concurrency=2, **extra)
        self.sandbox = WatchedSandbox(self.inner)
        self.loop = asyncio.new_event_loop()

    def _row(self, raw: Any) -> Row | None:
        if self.parquet:
            return Row(-1, dict(raw))
        text = raw["text"]
        return row_from_line(-1, text) if text.strip() else None

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        out: list[str | None] = []
        for raw in batch.to_pylist():
            row = self._row(raw)
            if row is None:
                out.append(None)  # a blank line is not a row
                continue
            item = prepare(row, self.spec, self.tasks)
            if item.content_id in self.skip:
                out.append("")  # kept from an earlier run
                continue
            record = self.loop.run_until_complete(averify_item(item, self.sandbox, self.spec))
            out.append(json.dumps(record, ensure_ascii=False, default=str))
        return pa.table({"record": pa.array(out, type=pa.string())})

    def __ray_shutdown__(self) -> None:
        self.close()

    def close(self) -> None:
        self.inner.close()
        self.loop.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _dataset(path: Path) -> Any:
    import ray.data

    # Reading takes no CPU slot: with every CPU held by a worker actor (``--jobs`` = the
    # cluster's CPUs) a read task that needs one would wait for ever.
    if is_parquet(path):
        return ray.data.read_parquet(str(path.resolve()), num_cpus=0)
    return ray.data.read_text(str(path.resolve()), drop_empty_lines=True, num_cpus=0)


def run_ray(
    tasks: Path,
    solutions: Path | None,
    spec: RowSpec,
    *,
    jobs: int,
    sandbox_kind: str,
    done: Counter[str],
    emit: Callable[[dict[str, Any]], None],
    address: str | None = None,
) -> None:
    """Verify the rows with ``jobs`` actor workers on the cluster at ``address``; emit in order."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ConfigurationError("--engine ray needs Ray: pip install 'sipdo[ray]'") from exc
    source = solutions or tasks
    for path in (tasks, solutions):
        if path is not None and not path.is_file():
            raise ConfigurationError(f"no such file: {path}")
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    ds = _dataset(source).map_batches(
        VerifyWorker,
        fn_constructor_kwargs={
            "spec": spec,
            "tasks": str(tasks.resolve()),
            "solutions": str(solutions.resolve()) if solutions else None,
            "kind": sandbox_kind,
            "skip": frozenset(k for k, n in done.items() if n > 0),
        },
        batch_size=BATCH_ROWS,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=jobs),
        num_cpus=1,
        max_restarts=-1,
        max_task_retries=-1,
    )
    index = 0
    for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        for text in batch.column("record").to_pylist():
            if text is None:
                continue
            if text:
                record = json.loads(text)
                record["row"] = index
                emit(record)
            index += 1
