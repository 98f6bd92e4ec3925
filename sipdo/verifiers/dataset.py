"""``verify_dataset``: verify a whole file of tasks, or of samples, into a verdict JSONL.

One output row per input row, in input order, each carrying the input's
``task_id`` and a boolean ``passed`` (see ``rowcheck``). Modes: ``tasks``
(is each task sound: ``verify_task``) and, given ``solutions``, ``solutions``
(grade each sample against its task: ``verify_solution``; the summary has
pass@k). Reading, verifying and writing stream: at most ``2 * jobs`` rows
are held at once, whatever the file size. ``jobs`` bounds the sandbox runs
in flight; verdicts do not depend on it (the verifiers are derandomized and
the output keeps input order). ``resume=True`` keeps the verdicts already in
``output`` (matched by content id) and verifies only the rest.
``engine="ray"`` runs the same per-row work on a Ray cluster
(``ray_engine``). ``sipdo verify`` is a thin wrapper over this, and so is
grading a samples file elsewhere: call it with ``solutions=``.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from sipdo.errors import ConfigurationError
from sipdo.sandbox.base import Sandbox
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.datafiles import VerdictWriter, prepare_resume, read_rows
from sipdo.verifiers.refstore import store_at
from sipdo.verifiers.rowcheck import RETRY_STATUSES, Item, RowSpec, averify_item, prepare
from sipdo.verifiers.summary import DatasetSummary
from sipdo.verifiers.taskindex import TaskIndex
from sipdo.verifiers.watch import WatchedSandbox

Progress = Callable[[dict[str, Any], bool], None]  # (record, kept from an earlier run)


def default_jobs() -> int:
    return max(1, os.cpu_count() or 1)


def make_spec(
    *,
    solutions: bool,
    fmt: str = "auto",
    mapping: Mapping[str, str] | None = None,
    solutions_mapping: Mapping[str, str] | None = None,
    fix_suggestions: bool = False,
    retries: int = 2,
    backoff_s: float = 2.0,
    config: VerifierConfig | None = None,
    reference_cache: str | Path | None = None,
) -> RowSpec:
    """The ``RowSpec`` of a run (validated; a reference cache is opened here, so a file that
    is not one fails before any row)."""
    if retries < 0:
        raise ConfigurationError("retries must be >= 0")
    if reference_cache is not None:
        if not solutions:
            raise ConfigurationError(
                "a reference cache serves solutions mode (--solutions): verifying a task runs "
                "its reference twice on purpose, to see that it is deterministic"
            )
        reference_cache = str(store_at(reference_cache).path)
    return RowSpec(
        mode="solutions" if solutions else "tasks",
        fmt=fmt,
        mapping=dict(mapping or {}),
        solutions_mapping=dict(solutions_mapping or {}),
        fix_suggestions=fix_suggestions,
        retries=retries,
        backoff_s=backoff_s,
        config=config or VerifierConfig(),
        reference_cache=None if reference_cache is None else str(reference_cache),
    )


def items_of(
    tasks: Path, solutions: Path | None, spec: RowSpec, index: TaskIndex | None
) -> Iterator[Item]:
    """The input rows as items, streamed (samples in ``solutions`` mode, found in ``index``;
    else tasks)."""
    for row in read_rows(solutions or tasks):
        yield prepare(row, spec, index)


def _paths(
    tasks: str | Path, solutions: str | Path | None, output: str | Path
) -> tuple[Path, Path | None, Path]:
    """The three paths, checked: the inputs exist, the output is neither of them."""
    paths = Path(tasks), Path(solutions) if solutions is not None else None, Path(output)
    for path in paths[:2]:
        if path is not None and not path.is_file():
            raise ConfigurationError(f"no such file: {path}")
    if paths[2].resolve() in {p.resolve() for p in paths[:2] if p is not None}:
        raise ConfigurationError(f"the output {paths[2]} would overwrite an input")
    return paths


def _open_sandbox(sandbox: Sandbox | str, jobs: int) -> tuple[Sandbox, bool]:
    if isinstance(sandbox, Sandbox):
        return sandbox, False
    from sipdo.sandbox.factory import open_sandbox

    extra: dict[str, Any] = {"pool_size": jobs} if sandbox in ("auto", "docker") else {}
    return open_sandbox(sandbox, max_concurrency=jobs, **extra), True


async def _run_local(
    items: Iterator[Item],
    sandbox: Sandbox,
    spec: RowSpec,
    jobs: int,
    done: Counter[str],
    emit: Callable[[dict[str, Any]], None],
) -> None:
    watched = WatchedSandbox(sandbox)
    watched.max_concurrency = jobs
    window = 2 * jobs
    pending: deque[asyncio.Task[dict[str, Any]]] = deque()
    try:
        for item in items:
            if done[item.content_id] > 0:
                done[item.content_id] -= 1
                continue
            pending.append(asyncio.create_task(averify_item(item, watched, spec)))
            # Write in input order; hold at most ``window`` rows.
            while pending and (pending[0].done() or len(pending) >= window):
                emit(await pending.popleft())
        while pending:
            emit(await pending.popleft())
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def averify_dataset(
    tasks: str | Path,
    *,
    output: str | Path,
    solutions: str | Path | None = None,
    jobs: int | None = None,
    sandbox: Sandbox | str = "auto",
    fmt: str = "auto",
    mapping: Mapping[str, str] | None = None,
    solutions_mapping: Mapping[str, str] | None = None,
    fix_suggestions: bool = False,
    resume: bool = False,
    retries: int = 2,
    backoff_s: float = 2.0,
    config: VerifierConfig | None = None,
    ks: Sequence[int] = (1, 10, 100),
    engine: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    progress: Progress | None = None,
    reference_cache: str | Path | None = None,
) -> DatasetSummary:
    """Verify every row of ``tasks`` (or of ``solutions``) into ``output``; return the summary.

    ``sandbox`` is an open ``Sandbox`` (left open) or a kind for
    ``open_sandbox`` (opened with ``jobs`` workers and closed). ``progress``
    is called with each record as it is written (and with each one a resumed
    run keeps, flagged ``True``). ``reference_cache`` (solutions mode) is a
    SQLite file of reference sides reused across runs (``refstore``); with
    Ray, each node opens that path locally. The summary covers the
    whole output, kept verdicts of a resumed run included. Bad rows become
    verdicts, except task rows of ``solutions`` mode that cannot be read at all
    (no sample can name them): the summary lists those (``unreadable_tasks``). A
    missing or unreadable file raises ``ConfigurationError``.
    """
    jobs = jobs or default_jobs()
    if jobs < 1:
        raise ConfigurationError("jobs must be >= 1")
    spec = make_spec(
        solutions=solutions is not None,
        fmt=fmt,
        mapping=mapping,
        solutions_mapping=solutions_mapping,
        fix_suggestions=fix_suggestions,
        retries=retries,
        backoff_s=backoff_s,
        config=config,
        reference_cache=reference_cache,
    )
    if engine not in ("local", "ray"):
        raise ConfigurationError(f"unknown engine {engine!r}; available: local, ray")
    tasks_path, solutions_path, out = _paths(tasks, solutions, output)
    summary = DatasetSummary(ks=ks)

    def kept(record: dict[str, Any]) -> None:
        summary.add(record)
        if progress is not None:
            progress(record, True)

    done = prepare_resume(out, retry=RETRY_STATUSES, keep=kept) if resume else Counter()
    index = None
    if solutions_path is not None:  # one pass over the tasks file, off the event loop
        index = await asyncio.to_thread(TaskIndex, tasks_path, fmt=spec.fmt, mapping=spec.mapping)
        summary.unreadable_tasks = list(index.unreadable)
    items = items_of(tasks_path, solutions_path, spec, index)
    with VerdictWriter(out, append=resume) as writer:

        def emit(record: dict[str, Any]) -> None:
            writer.write(record)
            summary.add(record)
            if progress is not None:
                progress(record, False)

        if engine == "ray":
            from sipdo.verifiers.ray_engine import run_ray

            kind = sandbox if isinstance(sandbox, str) else sandbox.kind
            await asyncio.to_thread(
                run_ray,
                tasks_path,
                solutions_path,
                spec,
                jobs=jobs,
                sandbox_kind=kind,
                done=done,
                emit=emit,
                address=ray_address,
            )
        else:
            opened, owned = _open_sandbox(sandbox, jobs)
            try:
                await _run_local(items, opened, spec, jobs, done, emit)
            finally:
                if owned:
                    await opened.aclose()
    return summary


def verify_dataset(tasks: str | Path, *, output: str | Path, **kw: Any) -> DatasetSummary:
    """Blocking twin of ``averify_dataset`` (same arguments); not for use inside an event loop."""
    return asyncio.run(averify_dataset(tasks, output=output, **kw))
