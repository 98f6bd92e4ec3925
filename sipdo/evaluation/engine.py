"""Running an eval: answer every (task, sample) once, grade it both ways, keep it.

The decisions are pure and live elsewhere (``results``: folding records into
pass@k; ``plan`` below: which samples are still missing); this module only
drives them: model calls, sandbox runs and store writes, overlapped up to
``jobs`` samples at a time. Each graded sample is written to the run store
as soon as it is graded, so a killed eval resumes where it stopped (the
same settings derive the same eval id, and stored samples are not solved
again).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel

from sipdo.errors import ConfigurationError, ModelOutputError
from sipdo.evaluation.benchmarks import task_key
from sipdo.evaluation.grading import agrade
from sipdo.evaluation.results import (
    EvalResult,
    SampleRecord,
    Usage,
    default_ks,
    derive_eval_id,
    summarize,
)
from sipdo.evaluation.samples import SampleRow, read_samples
from sipdo.sandbox.base import Sandbox
from sipdo.structured import CallStats, message_text
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.types import CodeTask

if TYPE_CHECKING:
    from sipdo.plugins.domains.base import Domain
    from sipdo.store.evals import EvalRuns

Progress = Callable[[dict[str, Any]], None]
DEFAULT_SAMPLING_TEMPERATURE = 0.8  # Chen et al. 2021's setting for pass@k with k > 1


@dataclass(frozen=True)
class Job:
    """One sample to produce: solve (or take ``answer``) and grade; or a row that is a
    ``problem`` (status, reason) and is recorded as such."""

    task_id: str
    sample: int
    task: CodeTask | None
    answer: str | None = None
    problem: tuple[str, str] | None = None


@dataclass(frozen=True)
class Estimate:
    """What an eval will cost before it starts: model calls and tokens (approximate)."""

    calls: int
    input_tokens: int
    max_output_tokens: int | None

    def describe(self) -> str:
        out = f"up to {self.max_output_tokens}" if self.max_output_tokens else "unbounded"
        return f"{self.calls} model calls, ~{self.input_tokens} input tokens, {out} output tokens"


def plan(jobs: Sequence[Job], done: Mapping[tuple[str, int], SampleRecord]) -> list[Job]:
    """The jobs whose (task, sample) has no stored record yet."""
    return [j for j in jobs if (j.task_id, j.sample) not in done]


def model_label(model: str | BaseChatModel) -> str:
    """A model's name for the record: the spec as given, else its ``model_name``."""
    if isinstance(model, str):
        return model
    for attr in ("model_name", "model"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def tasks_digest(tasks: Sequence[CodeTask]) -> str:
    """Digest of the task set's content (ids, statements, references, tests)."""
    h = hashlib.sha256()
    for t in tasks:
        h.update(json.dumps(t.model_dump(mode="json"), sort_keys=True).encode("utf-8"))
    return h.hexdigest()[:16]


def estimate(
    prompt: str, tasks: Sequence[CodeTask], samples: int, domain: Domain, model: Any = None
) -> Estimate:
    """Calls = tasks x samples; input tokens from the messages' length (4 chars a token)."""
    chars = sum(
        len(str(m.content))
        for t in tasks
        for m in domain.solve_messages(t.model_dump(mode="json"), prompt)
    )
    cap = getattr(model, "max_tokens", None)
    calls = len(tasks) * samples
    return Estimate(
        calls, chars * samples // 4, cap * calls if isinstance(cap, int) and cap > 0 else None
    )


def _call_params(model: BaseChatModel, temperature: float, seed: int) -> dict[str, Any]:
    params: dict[str, Any] = {"temperature": temperature}
    if "seed" in type(model).model_fields:
        params["seed"] = seed
    return params


async def _ask(
    model: BaseChatModel, messages: list[Any], params: dict[str, Any]
) -> tuple[str, CallStats]:
    started = time.perf_counter()
    try:
        reply = await model.ainvoke(messages, **params)
    except ModelOutputError:
        return "", CallStats(1, 0, 0, time.perf_counter() - started)
    return message_text(reply), CallStats.of(reply, time.perf_counter() - started)


def usage_of(records: Sequence[SampleRecord], wall_seconds: float) -> Usage:
    """Model and sandbox usage summed over the records' ``data``."""

    def total(key: str) -> float:
        return sum(float(r.data.get(key, 0) or 0) for r in records)

    return Usage(
        calls=int(total("calls")),
        input_tokens=int(total("input_tokens")),
        output_tokens=int(total("output_tokens")),
        model_seconds=round(total("model_seconds"), 3),
        sandbox_seconds=round(total("grade_seconds"), 3),
        wall_seconds=round(wall_seconds, 3),
    )


AnswerOf = Callable[[Job], Awaitable[tuple[str, dict[str, Any]]]]


async def _run(
    todo: Sequence[Job],
    answer_of: AnswerOf,
    *,
    sandbox: Sandbox,
    config: VerifierConfig | None,
    store: EvalRuns | None,
    eval_id: str,
    jobs: int,
    progress: Progress | None,
    total: int,
    kept: int,
) -> list[SampleRecord]:
    """Produce, grade and store every job; on a system failure cancel the rest and raise
    (what was stored stays: the eval resumes from there)."""
    gate = asyncio.Semaphore(jobs)
    finished: list[SampleRecord] = []

    async def one(job: Job) -> SampleRecord:
        async with gate:
            if job.problem is not None:
                status, reason = job.problem
                rec = SampleRecord(
                    job.task_id, job.sample, status, job.answer or "", False, False, reason
                )
            else:
                assert job.task is not None  # a job without a problem always has its task
                answer, data = await answer_of(job)
                grade = await agrade(job.task, answer, sandbox=sandbox, config=config)
                data |= {"grade_seconds": round(grade.seconds, 3), "base_detail": grade.base_detail}
                rec = SampleRecord(
                    job.task_id,
                    job.sample,
                    grade.status,
                    answer,
                    grade.base_passed,
                    grade.full_passed,
                    grade.feedback,
                    data,
                )
            if store is not None:
                await asyncio.to_thread(
                    store.record_eval_result,
                    eval_id,
                    rec.task_id,
                    rec.sample,
                    status=rec.status,
                    answer=rec.answer,
                    base_passed=rec.base_passed,
                    full_passed=rec.full_passed,
                    feedback=rec.feedback,
                    data=rec.data,
                )
            finished.append(rec)
            if progress is not None:
                progress(
                    {
                        "kind": "sample",
                        "done": kept + len(finished),
                        "total": total,
                        "task_id": rec.task_id,
                        "sample": rec.sample,
                        "status": rec.status,
                        "base_passed": rec.base_passed,
                        "full_passed": rec.full_passed,
                    }
                )
            return rec

    running = [asyncio.create_task(one(job)) for job in todo]
    try:
        await asyncio.gather(*running)
    except BaseException:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise
    return finished


async def _evaluate(
    *,
    jobs_list: list[Job],
    answer_of: AnswerOf,
    identity: dict[str, Any],
    settings: dict[str, Any],
    prompt: str,
    model: str,
    benchmark: str,
    order: list[str],
    ks: Sequence[int],
    sandbox: Sandbox | str,
    store: EvalRuns | None,
    eval_id: str | None,
    jobs: int,
    config: VerifierConfig | None,
    progress: Progress | None,
    source_run_id: str | None,
    source_version: str | None,
    start_event: dict[str, Any],
    source_iteration: int | None = None,
) -> EvalResult:
    if jobs < 1:
        raise ConfigurationError("jobs must be >= 1")
    digest = derive_eval_id(identity)
    eval_id = eval_id or digest
    done: dict[tuple[str, int], SampleRecord] = {}
    if store is not None:
        await asyncio.to_thread(
            store.create_eval,
            eval_id,
            prompt=prompt,
            model=model,
            benchmark=benchmark,
            config={**settings, "identity": digest, "source_iteration": source_iteration},
            source_run_id=source_run_id,
            source_version=source_version,
        )
        stored = await asyncio.to_thread(store.get_eval, eval_id)
        if stored.config.get("identity") != digest:
            raise ConfigurationError(
                f"eval {eval_id!r} was started with other settings (prompt, model, tasks, "
                "samples, temperature or seed); use another --eval-id"
            )
        for row in await asyncio.to_thread(store.eval_results, eval_id):
            done[(row.task_id, row.sample)] = SampleRecord.from_stored(row)
    wanted = {(j.task_id, j.sample) for j in jobs_list}
    kept = [rec for key, rec in done.items() if key in wanted]
    todo = plan(jobs_list, done)
    if progress is not None:
        progress(
            {
                **start_event,
                "kind": "start",
                "eval_id": eval_id,
                "todo": len(todo),
                "kept": len(kept),
            }
        )
    started = time.perf_counter()
    opened, owned = _open(sandbox, jobs) if todo else (None, False)
    try:
        new = (
            await _run(
                todo,
                answer_of,
                sandbox=opened,
                config=config,
                store=store,
                eval_id=eval_id,
                jobs=jobs,
                progress=progress,
                total=len(jobs_list),
                kept=len(kept),
            )
            if opened is not None
            else []
        )
    except BaseException:
        if store is not None:
            # Synchronously: the task may be cancelled; the stored samples stay for a resume.
            store.finish_eval(eval_id, "interrupted", {"settings": settings})
        raise
    finally:
        if owned and opened is not None:
            await opened.aclose()
    records = [*kept, *new]
    wall = time.perf_counter() - started
    result = summarize(
        records,
        eval_id=eval_id,
        model=model,
        benchmark=benchmark,
        settings=settings,
        ks=ks,
        order=order,
        usage=usage_of(records, wall),
        kept=len(kept),
        spent=usage_of(new, wall),
    )
    if store is not None:
        await asyncio.to_thread(store.finish_eval, eval_id, "finished", result.summary())
    return result


def _open(sandbox: Sandbox | str, jobs: int) -> tuple[Sandbox, bool]:
    if isinstance(sandbox, Sandbox):
        return sandbox, False
    from sipdo.sandbox.factory import open_sandbox

    extra: dict[str, Any] = {"pool_size": jobs} if sandbox in ("auto", "docker") else {}
    return open_sandbox(sandbox, max_concurrency=jobs, **extra), True


async def aevaluate_prompt(
    prompt: str,
    model: str | BaseChatModel | None,
    tasks: Sequence[CodeTask],
    *,
    sandbox: Sandbox | str = "auto",
    store: EvalRuns | None = None,
    eval_id: str | None = None,
    samples_per_task: int = 1,
    temperature: float | None = None,
    seed: int = 0,
    ks: Sequence[int] | None = None,
    jobs: int = 2,
    config: VerifierConfig | None = None,
    domain: Domain | None = None,
    benchmark: str = "tasks",
    source_run_id: str | None = None,
    source_version: str | None = None,
    source_iteration: int | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """Evaluate ``prompt`` with ``model`` on held-out ``tasks``; see ``sipdo.evaluation``."""
    from sipdo.plugins.domains.code import CodeDomain
    from sipdo.plugins.models.resolve import default_model_spec, resolve_model

    if samples_per_task < 1:
        raise ConfigurationError("samples_per_task must be >= 1")
    if not tasks:
        raise ConfigurationError("no tasks to evaluate on")
    domain = domain or CodeDomain()
    spec = model if model is not None else default_model_spec("learner")
    chat = resolve_model(spec, role="learner")
    label = model_label(spec)
    temp = (
        temperature
        if temperature is not None
        else (0.0 if samples_per_task == 1 else DEFAULT_SAMPLING_TEMPERATURE)
    )
    ks = tuple(ks) if ks else default_ks(samples_per_task)
    order = [task_key(t.id) for t in tasks]
    if len(set(order)) != len(order):
        raise ConfigurationError("task ids must be unique")
    settings = {
        "mode": "model",
        "model": label,
        "temperature": temp,
        "seed": seed,
        "samples_per_task": samples_per_task,
        "ks": list(ks),
        "tasks": len(tasks),
        "tasks_digest": tasks_digest(tasks),
        "domain": getattr(domain, "name", type(domain).__name__),
    }
    identity = {**settings, "prompt": prompt, "ks": None}
    jobs_list = [Job(task_key(t.id), s, t) for t in tasks for s in range(samples_per_task)]

    async def answer_of(job: Job) -> tuple[str, dict[str, Any]]:
        assert job.task is not None
        task = job.task.model_dump(mode="json")
        messages = domain.solve_messages(task, prompt)
        params = _call_params(chat, temp, seed + job.sample)
        reply, stats = await _ask(chat, list(messages), params)
        answer = domain.parse_answer(task, reply) if reply.strip() else ""
        return answer, {
            "calls": stats.calls,
            "input_tokens": stats.input_tokens,
            "output_tokens": stats.output_tokens,
            "model_seconds": round(stats.latency_s, 3),
        }

    cost = estimate(prompt, tasks, samples_per_task, domain, chat)
    return await _evaluate(
        jobs_list=jobs_list,
        answer_of=answer_of,
        identity=identity,
        settings=settings,
        prompt=prompt,
        model=label,
        benchmark=benchmark,
        order=order,
        ks=ks,
        sandbox=sandbox,
        store=store,
        eval_id=eval_id,
        jobs=jobs,
        config=config,
        progress=progress,
        source_run_id=source_run_id,
        source_version=source_version,
        source_iteration=source_iteration,
        start_event={"estimate": cost},
    )


def sample_jobs(rows: Sequence[SampleRow], tasks: Sequence[CodeTask]) -> list[Job]:
    """One job per samples row: unreadable rows and unknown task ids become problems."""
    by_id = {task_key(t.id): t for t in tasks}
    seen: Counter[str] = Counter()
    out: list[Job] = []
    for row in rows:
        if row.error is not None or row.task_id is None:
            out.append(
                Job(f"line-{row.line}", 0, None, problem=("bad_row", row.error or "bad row"))
            )
            continue
        task = by_id.get(row.task_id)
        sample = seen[row.task_id]
        seen[row.task_id] += 1
        if task is None:
            reason = f"line {row.line}: unknown task id {row.task_id!r} (not in the task set)"
            out.append(
                Job(
                    row.task_id,
                    sample,
                    None,
                    answer=row.solution or row.completion,
                    problem=("unknown_task", reason),
                )
            )
            continue
        answer = row.solution if row.solution is not None else task.prompt + (row.completion or "")
        out.append(Job(row.task_id, sample, task, answer=answer))
    return out


async def agrade_samples(
    samples: str | Path,
    tasks: Sequence[CodeTask],
    *,
    sandbox: Sandbox | str = "auto",
    store: EvalRuns | None = None,
    eval_id: str | None = None,
    ks: Sequence[int] | None = None,
    jobs: int = 2,
    config: VerifierConfig | None = None,
    benchmark: str = "tasks",
    progress: Progress | None = None,
) -> EvalResult:
    """Grade a samples file against ``tasks`` without a model (both gradings)."""
    rows, digest = read_samples(samples)
    jobs_list = sample_jobs(rows, tasks)
    per_task = Counter(j.task_id for j in jobs_list if j.problem is None)
    ks = tuple(ks) if ks else default_ks(min(per_task.values(), default=1))
    settings = {
        "mode": "samples",
        "samples_file": str(samples),
        "samples_digest": digest[:16],
        "rows": len(rows),
        "ks": list(ks),
        "tasks": len(per_task),
        "tasks_digest": tasks_digest(tasks),
    }
    identity = {**settings, "samples_file": None, "ks": None}

    async def answer_of(job: Job) -> tuple[str, dict[str, Any]]:
        return job.answer or "", {}

    return await _evaluate(
        jobs_list=jobs_list,
        answer_of=answer_of,
        identity=identity,
        settings=settings,
        prompt="",
        model="(samples file)",
        benchmark=benchmark,
        order=[task_key(t.id) for t in tasks],
        ks=ks,
        sandbox=sandbox,
        store=store,
        eval_id=eval_id,
        jobs=jobs,
        config=config,
        progress=progress,
        source_run_id=None,
        source_version=None,
        start_event={"estimate": Estimate(0, 0, 0)},
    )


def _outside_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise ConfigurationError("called inside an event loop: await the async variant instead")


def evaluate_prompt(
    prompt: str, model: str | BaseChatModel | None, tasks: Sequence[CodeTask], **kw: Any
) -> EvalResult:
    """Blocking twin of ``aevaluate_prompt`` (same arguments); not for use inside a loop."""
    _outside_loop()
    return asyncio.run(aevaluate_prompt(prompt, model, tasks, **kw))


def grade_samples(samples: str | Path, tasks: Sequence[CodeTask], **kw: Any) -> EvalResult:
    """Blocking twin of ``agrade_samples`` (same arguments); not for use inside a loop."""
    _outside_loop()
    return asyncio.run(agrade_samples(samples, tasks, **kw))
