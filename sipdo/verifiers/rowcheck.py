"""One dataset row -> one verdict record: the unit of work of every engine (local, Ray).

``prepare`` reads a row into an ``Item`` (the task, in ``solutions`` mode the
candidate too, and the row's content id), or into an item that carries why
it cannot be read. ``averify_item`` verifies it with ``averify_task`` /
``averify_solution`` and returns the record written to the output: the
input's ``task_id``, ``passed``, a ``status`` and the ``reason`` in words,
every check, timings. Infrastructure trouble is retried (see ``watch``), so
a verdict never blames the code for a dead engine: after the retries the row
is an ``infrastructure_error``, not a failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sipdo.errors import SandboxError, VerificationError
from sipdo.sandbox.base import Sandbox
from sipdo.verifiers.api import averify_solution, averify_task
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.datafiles import Row, canonical
from sipdo.verifiers.fixes import suggest_fix
from sipdo.verifiers.formats import RowError, remap, row_task_id, task_from_row
from sipdo.verifiers.refstore import store_at
from sipdo.verifiers.types import CodeTask, Verdict, content_id
from sipdo.verifiers.watch import RunLog, watching

Mode = Literal["tasks", "solutions"]
# Statuses a resumed run verifies again rather than keeps.
RETRY_STATUSES = frozenset({"infrastructure_error"})


@dataclass(frozen=True)
class RowSpec:
    """How rows are read and verified; picklable, so Ray workers get the same."""

    mode: Mode = "tasks"
    fmt: str = "auto"
    mapping: Mapping[str, str] = field(default_factory=dict)
    solutions_mapping: Mapping[str, str] = field(default_factory=dict)
    fix_suggestions: bool = False
    retries: int = 2
    backoff_s: float = 2.0
    config: VerifierConfig = field(default_factory=VerifierConfig)
    # A ReferenceStore's file (solutions mode): reference sides kept across runs. It changes
    # no verdict, so it is no part of a row's content id.
    reference_cache: str | None = None

    def key(self) -> str:
        """What, besides the row, decides its verdict (part of every content id)."""
        return canonical(
            [
                self.mode,
                self.fmt,
                dict(self.mapping),
                dict(self.solutions_mapping),
                self.fix_suggestions,
                repr(self.config),
            ]
        )


@dataclass(frozen=True)
class Item:
    """A row ready to verify, or the reason it cannot be (``error``)."""

    index: int
    task_id: Any
    content_id: str
    task: CodeTask | None = None
    candidate: str | None = None
    error: str | None = None


TaskLookup = Callable[[Any], CodeTask]


def candidate_of(sample: Mapping[str, Any], task: CodeTask) -> str:
    """A sample's module source: its ``solution``, or the prompt + a HumanEval ``completion``."""
    if isinstance(sample.get("solution"), str):
        return str(sample["solution"])
    if isinstance(sample.get("completion"), str):
        return task.prompt + str(sample["completion"])
    raise RowError(
        "a sample needs a 'solution' (module source) or a 'completion' (after the prompt)"
    )


def prepare(row: Row, spec: RowSpec, tasks: TaskLookup | None = None) -> Item:
    """Read ``row`` as a task (``tasks`` mode) or as a sample of a task in ``tasks``."""
    text = canonical(row.data) if row.data is not None else row.text
    cid = content_id(spec.key(), text, prefix="row")
    if row.data is None:
        return Item(row.index, None, cid, error=row.error)
    try:
        if spec.mode == "tasks":
            data = remap(row.data, spec.mapping)
            task = task_from_row(data, spec.fmt)
            tid = row_task_id(data)
            return Item(row.index, task.id if tid is None else tid, cid, task=task)
        data = remap(row.data, spec.solutions_mapping)
        tid = row_task_id(data)
        if tid is None or tasks is None:
            raise RowError("a sample needs the 'task_id' of its task")
        task = tasks(tid)
        candidate = candidate_of(data, task)
        cid = content_id(cid, task.model_dump_json(), prefix="row")
        return Item(row.index, tid, cid, task=task, candidate=candidate)
    except RowError as exc:
        return Item(row.index, row_task_id(row.data), cid, error=str(exc))


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def record(item: Item, spec: RowSpec, **fields: Any) -> dict[str, Any]:
    """The output row: identity first, then what the verification said."""
    return {
        "task_id": item.task_id,
        "row": item.index,
        "content_id": item.content_id,
        "mode": spec.mode,
        **fields,
    }


def unreadable(item: Item, spec: RowSpec) -> dict[str, Any]:
    reason = item.error or "unreadable row"
    return record(
        item,
        spec,
        passed=False,
        status="unreadable",
        reason=reason,
        failed_checks=[],
        score=0.0,
        feedback=reason,
        counterexample=None,
        checks=[],
        attempts=0,
        timings={"verify_s": 0.0},
    )


def _from_verdict(item: Item, spec: RowSpec, verdict: Verdict) -> dict[str, Any]:
    good, bad = ("accepted", "rejected") if spec.mode == "tasks" else ("passed", "failed")
    failed = [c.name for c in verdict.checks if not c.passed]
    mutation = verdict.check("mutation")
    return record(
        item,
        spec,
        passed=verdict.passed,
        status=good if verdict.passed else bad,
        reason=_first_line(verdict.feedback),
        failed_checks=failed,
        score=verdict.score,
        mutation_score=mutation.score if mutation is not None else None,
        feedback=verdict.feedback,
        counterexample=verdict.counterexample,
        checks=[c.model_dump() for c in verdict.checks],
    )


async def _verify(item: Item, sandbox: Sandbox, spec: RowSpec) -> Verdict:
    assert item.task is not None  # prepare() gives a task to every readable item
    if spec.mode == "tasks":
        return await averify_task(item.task, sandbox=sandbox, config=spec.config)
    assert item.candidate is not None
    references = store_at(spec.reference_cache) if spec.reference_cache else None
    return await averify_solution(
        item.task, item.candidate, sandbox=sandbox, config=spec.config, references=references
    )


async def averify_item(item: Item, sandbox: Sandbox, spec: RowSpec) -> dict[str, Any]:
    """The verdict record of ``item``; infrastructure trouble is retried, never graded.

    ``sandbox`` should be a ``WatchedSandbox`` (otherwise only raised errors
    are seen). A negative verdict from an attempt that saw an abnormal run is
    confirmed by one more attempt, whose verdict counts; ``SandboxError`` is
    retried with backoff; ``VerificationError`` (the task or the harness is
    broken) is retried too, then reported as ``task_error``.
    """
    if item.error is not None:
        return unreadable(item, spec)
    started = time.perf_counter()
    errors: list[str] = []
    verdict: Verdict | None = None
    broken: str | None = None
    attempts = 0
    confirmed = False
    while attempts <= spec.retries:
        attempts += 1
        with watching(RunLog()) as log:
            try:
                verdict, broken = await _verify(item, sandbox, spec), None
            except SandboxError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                verdict = None
            except VerificationError as exc:
                broken, verdict = str(exc), None
        if verdict is not None and (verdict.passed or confirmed or not log.suspicious):
            break
        # A negative verdict from a disturbed attempt is confirmed by one more
        # (its verdict counts); an error is retried. Both wait for the engine.
        confirmed = verdict is not None
        if attempts <= spec.retries:
            await asyncio.sleep(spec.backoff_s * attempts)
    timings = {"verify_s": round(time.perf_counter() - started, 3)}
    if verdict is not None:
        out = _from_verdict(item, spec, verdict)
        if spec.fix_suggestions and not verdict.passed:
            out["fix"] = await suggest_fix(item, verdict, sandbox, spec)
        return {**out, "attempts": attempts, "timings": timings}
    status, reason = (
        ("task_error", f"the task cannot be graded: {_first_line(broken)}")
        if broken is not None and not errors
        else (
            "infrastructure_error",
            f"the sandbox failed {len(errors)} time(s): "
            + _first_line((errors or [broken or ""])[-1]),
        )
    )
    return record(
        item,
        spec,
        passed=False,
        status=status,
        reason=reason,
        failed_checks=[],
        score=0.0,
        feedback="\n".join(errors[-3:]) or (broken or ""),
        counterexample=None,
        checks=[],
        attempts=attempts,
        timings=timings,
    )
