"""Running an eval: answer every (task, sample) once, grade it both ways, keep it.

The decisions are pure and live elsewhere (``plan``: the jobs, which are
still missing, the cost; ``results``: folding records into pass@k); this module only
drives them: model calls, sandbox runs and store writes, overlapped up to
``jobs`` samples at a time. Each graded sample is written to the run store
as soon as it is graded, so a killed eval resumes where it stopped (the
same settings derive the same eval id, and stored samples are not solved
again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel

from sipdo.calls import CallStats, message_text
from sipdo.errors import ConfigurationError, ModelOutputError
from sipdo.evaluation.benchmarks import task_key
from sipdo.evaluation.grading import Grade, agrade, agrade_by_domain
from sipdo.evaluation.plan import (
    EvalTask,
    Job,
    estimate,
    model_label,
    plan,
    task_data,
    task_id_of,
    tasks_digest,
    usage_of,
)
from sipdo.evaluation.results import EvalResult, SampleRecord, default_ks, derive_eval_id, summarize
from sipdo.sandbox.base import Sandbox
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.grading import Answer, answer_text
from sipdo.verifiers.types import CodeTask

if TYPE_CHECKING:
    from sipdo.plugins.domains.base import Domain
    from sipdo.store.evals import EvalRuns

Progress = Callable[[dict[str, Any]], None]
RETRIED_ON_RESUME = ("task_error",)
DEFAULT_SAMPLING_TEMPERATURE = 0.8  # Chen et al. 2021's setting for pass@k with k > 1


def grading_rules(config: VerifierConfig | None) -> dict[str, Any]:
    """The grading rules an eval's identity names, so verdicts graded under other rules
    are never resumed into it (``declared domain``: ``sipdo.verifiers.domain``)."""
    return {"grading": "declared-domain"} if (config or VerifierConfig()).declared_domain else {}


def _call_params(model: BaseChatModel, temperature: float, seed: int) -> dict[str, Any]:
    params: dict[str, Any] = {"temperature": temperature}
    if "seed" in type(model).model_fields:
        params["seed"] = seed
    return params


async def _ask(
    model: BaseChatModel, messages: Sequence[Any], params: dict[str, Any]
) -> tuple[str, CallStats]:
    started = time.perf_counter()
    try:
        reply = await model.ainvoke(list(messages), **params)
    except ModelOutputError:
        return "", CallStats(1, 0, 0, time.perf_counter() - started)
    return message_text(reply), CallStats.of(reply, time.perf_counter() - started)


AnswerOf = Callable[[Job], Awaitable[tuple[Answer, dict[str, Any]]]]
# Runs one sample's grading (``agrade``, given as a thunk), e.g. again after engine trouble.
GradeGuard = Callable[[Callable[[], Awaitable[Grade]]], Awaitable[Grade]]


async def _grade(
    task: EvalTask,
    answer: Answer,
    *,
    sandbox: Sandbox,
    config: VerifierConfig | None,
    domain: Domain | None,
) -> Grade:
    """A code task two ways (``agrade``); another domain's task by that domain."""
    if isinstance(task, CodeTask):
        return await agrade(task, answer_text(answer), sandbox=sandbox, config=config)
    if domain is None:
        raise ConfigurationError(f"task {task_id_of(task)!r} is not a code task: give its domain")
    return await agrade_by_domain(domain, task, answer, sandbox=sandbox)


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
    domain: Domain | None = None,
    guard: GradeGuard | None = None,
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
                task = job.task

                def grading() -> Awaitable[Grade]:
                    return _grade(task, answer, sandbox=sandbox, config=config, domain=domain)

                grade = await (guard(grading) if guard is not None else grading())
                data |= {"grade_seconds": round(grade.seconds, 3), "base_detail": grade.base_detail}
                rec = SampleRecord(
                    job.task_id,
                    job.sample,
                    grade.status,
                    answer_text(answer),  # the text form; a structured answer as JSON
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


async def run_eval(
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
    domain: Domain | None = None,
    guard: GradeGuard | None = None,
) -> EvalResult:
    if jobs < 1:
        raise ConfigurationError("jobs must be >= 1")
    rules = grading_rules(config)
    identity = {**identity, **rules}
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
            config={
                **settings,
                **rules,
                "identity": digest,
                "source_iteration": source_iteration,
            },
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
            # A task that could not be graded may have met a passing fault (a reference
            # run timed out on a loaded machine): a resume tries it again.
            if row.status not in RETRIED_ON_RESUME:
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
                domain=domain,
                guard=guard,
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
    tasks: Sequence[EvalTask],
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
    prompt_model: Any = None,
    guard: GradeGuard | None = None,
) -> EvalResult:
    """Evaluate ``prompt`` with ``model`` on held-out ``tasks``; see ``sipdo.evaluation``.

    ``guard`` runs each sample's grading (the graph's held-out grading waits out sandbox
    engine trouble with it); without one a sandbox failure propagates.
    """
    from sipdo.plugins.domains.code import CodeDomain
    from sipdo.plugins.models.resolve import default_model_spec, resolve_model
    from sipdo.trprompt.writer import open_prompt_model

    writer = open_prompt_model(prompt_model)  # a directory is loaded (and checked) here

    if samples_per_task < 1:
        raise ConfigurationError("samples_per_task must be >= 1")
    if not tasks:
        raise ConfigurationError("no tasks to evaluate on")
    if writer is not None:
        refuse_trained_on(writer, tasks)
    domain = domain or CodeDomain()
    todo = eval_tasks(tasks, domain)
    spec = model if model is not None else default_model_spec("learner")
    chat = resolve_model(spec, role="learner")
    label = model_label(spec)
    temp = (
        temperature
        if temperature is not None
        else (0.0 if samples_per_task == 1 else DEFAULT_SAMPLING_TEMPERATURE)
    )
    ks = tuple(ks) if ks else default_ks(samples_per_task)
    order = [task_key(task_id_of(t)) for t in todo]
    if len(set(order)) != len(order):
        raise ConfigurationError("task ids must be unique")
    settings = {
        "mode": "model",
        "model": label,
        "temperature": temp,
        "seed": seed,
        "samples_per_task": samples_per_task,
        "ks": list(ks),
        "tasks": len(todo),
        "tasks_digest": tasks_digest(todo),
        "domain": getattr(domain, "name", type(domain).__name__),
    }
    if writer is not None:  # the key only then: other evals keep their ids
        settings["prompt_model"] = f"{writer.source} seed {writer.seed}"
    identity = {**settings, "prompt": prompt, "ks": None}
    jobs_list = [Job(task_key(task_id_of(t)), s, t) for t in todo for s in range(samples_per_task)]

    async def answer_of(job: Job) -> tuple[Answer, dict[str, Any]]:
        # The loop's own solve path: ``domain.asolve`` (one call, or a domain's
        # multi-turn exchange), every call counted.
        assert job.task is not None
        task = task_data(job.task)
        extra: dict[str, Any] = {}
        system = prompt
        if writer is not None:  # the prompt model writes this task's prompt from ``prompt``
            written = await writer.acompose_task(task, prompt)
            system = written.prompt
            seconds = written.stats.latency_s if written.stats is not None else 0.0
            extra = {"system_prompt": system, "prompt_model_seconds": round(seconds, 3)}
        params = _call_params(chat, temp, seed + job.sample)
        stats = CallStats()
        replies: list[str] = []

        async def ask(messages: Sequence[Any]) -> str:
            nonlocal stats
            reply, call = await _ask(chat, messages, params)
            stats += call
            replies.append(reply)
            return reply

        answer = await domain.asolve(task, system, ask)
        if not any(r.strip() for r in replies):
            answer = ""  # no reply at all: no answer, whatever the parser makes of ""
        return answer, {
            "calls": stats.calls,
            "input_tokens": stats.input_tokens,
            "output_tokens": stats.output_tokens,
            "model_seconds": round(stats.latency_s, 3),
            **extra,
        }

    cost = estimate(prompt, todo, samples_per_task, domain, chat)
    return await run_eval(
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
        domain=domain,
        guard=guard,
    )


def refuse_trained_on(writer: Any, tasks: Sequence[EvalTask]) -> None:
    """The held-out check of a prompt-model eval: no task may be one of its training
    queries (checked, not assumed); ConfigurationError naming them otherwise."""
    from sipdo.trprompt.dataset import task_key as query_key

    seen = [task_id_of(t) for t in tasks if query_key(task_data(t)) in writer.trained_on]
    if seen:
        shown = ", ".join(seen[:5]) + (", ..." if len(seen) > 5 else "")
        raise ConfigurationError(
            f"{len(seen)} of the tasks ({shown}) are training queries of prompt model "
            f"{writer.source}: a held-out score needs tasks it was never trained on"
        )


def eval_tasks(tasks: Sequence[EvalTask], domain: Domain) -> list[EvalTask]:
    """The tasks in the form their grading takes: ``CodeTask`` for the code domain (graded
    two ways), the domain's validated dicts otherwise; ``ConfigurationError`` names a
    task that is not the domain's. A wrapper of a domain (e.g. one that shows
    demonstrations first) grades as the domain it names in ``grades_as``."""
    code = getattr(domain, "grades_as", getattr(domain, "name", "")) == "code"
    out: list[EvalTask] = []
    for t in tasks:
        if code:
            data = t if isinstance(t, CodeTask) else domain.validate_task(t)
            out.append(CodeTask.model_validate(data))
        elif isinstance(t, CodeTask):
            raise ConfigurationError(
                f"task {t.id!r} is a code task; the {domain.name} domain cannot grade it"
            )
        else:
            out.append(domain.validate_task(t))
    return out


def outside_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise ConfigurationError("called inside an event loop: await the async variant instead")


def evaluate_prompt(
    prompt: str,
    model: str | BaseChatModel | None,
    tasks: Sequence[EvalTask],
    **kw: Any,
) -> EvalResult:
    """Blocking twin of ``aevaluate_prompt`` (same arguments); not for use inside a loop."""
    outside_loop()
    return asyncio.run(aevaluate_prompt(prompt, model, tasks, **kw))
