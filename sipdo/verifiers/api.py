"""Public entry points: ``verify_solution`` / ``verify_task`` and their async twins.

Each is a thin driver around one I/O-free flow (``solution_flow``,
``task_flow``). The reference side of a task is cached per sandbox (keyed by
the task's content and the config), so grading many candidates for one task
costs one untrusted run each, plus a replay of the tests when needed; callers
grading samples of one task at the same time (rows of a pass@k file, threads of
a reward function) wait for the first to make it. A ``ReferenceStore``
(``references=``) keeps it on disk for other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import replace

from sipdo.sandbox.base import Sandbox
from sipdo.verifiers import live
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.harness import codec
from sipdo.verifiers.protocol import Verifier
from sipdo.verifiers.reference import ReferenceRun, reference_flow
from sipdo.verifiers.refstore import ReferenceStore
from sipdo.verifiers.runs import Flow, adrive, drive
from sipdo.verifiers.solution_check import solution_flow
from sipdo.verifiers.task_check import MutantFate, mutation_flow, task_flow
from sipdo.verifiers.types import CodeTask, Verdict

_DEFAULT = VerifierConfig()
_CACHE_SIZE = 256
_caches: weakref.WeakKeyDictionary[Sandbox, OrderedDict[str, ReferenceRun]] = (
    weakref.WeakKeyDictionary()
)
_making: weakref.WeakKeyDictionary[Sandbox, dict[str, Future[ReferenceRun]]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def _cache_key(task: CodeTask, config: VerifierConfig) -> str:
    parts = [
        task.entry_point,
        task.reference_solution,
        task.tests,
        task.input_strategy,
        task.precondition,
        task.argument_policy,
        repr(config),
    ]
    return codec.key(parts)


def _cached(sandbox: Sandbox, key: str) -> ReferenceRun | None:
    with _lock:
        cache = _caches.get(sandbox)
        if cache is None or key not in cache:
            return None
        cache.move_to_end(key)
        return cache[key]


def _store(sandbox: Sandbox, key: str, ref: ReferenceRun) -> None:
    with _lock:
        cache = _caches.setdefault(sandbox, OrderedDict())
        cache[key] = ref
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)


def _known(
    task: CodeTask,
    sandbox: Sandbox,
    config: VerifierConfig,
    references: ReferenceStore | None,
) -> tuple[ReferenceRun | None, str, VerifierConfig]:
    """The reference side grading needs if this process or ``references`` has it.

    Returns it (or None) with the key and the config a new one is made under.
    Grading compares on the tests' and the standard inputs only; the extended set
    (``ext``) tells equivalent mutants apart for ``verify_task``. A reference side made
    for that serves here too; one made here skips it (it is never used to grade, and
    it does not change the others: generated and called after them).
    """
    lean = replace(config, n_extended=0)
    key = _cache_key(task, lean)
    ref = _cached(sandbox, _cache_key(task, config)) or _cached(sandbox, key)
    if ref is None and references is not None:
        ref = references.get(task, lean, sandbox)
        if ref is not None:
            _store(sandbox, key, ref)
    return ref, key, lean


def _made(
    task: CodeTask,
    sandbox: Sandbox,
    key: str,
    lean: VerifierConfig,
    references: ReferenceStore | None,
) -> Flow[ReferenceRun]:
    """Make the reference side and keep it (this process; ``references`` if given)."""
    [ref] = yield from reference_flow(task, lean)
    _store(sandbox, key, ref)
    if references is not None:
        references.put(task, lean, sandbox, ref)
    return ref


def _claim(sandbox: Sandbox, key: str) -> tuple[Future[ReferenceRun], bool]:
    """The future of ``key``'s reference side being made, and whether this caller makes it."""
    with _lock:
        making = _making.setdefault(sandbox, {})
        if key in making:
            return making[key], False
        future: Future[ReferenceRun] = Future()
        future.set_running_or_notify_cancel()  # so a waiter's cancellation cannot cancel it
        making[key] = future
        return future, True


def _settle(
    sandbox: Sandbox,
    key: str,
    future: Future[ReferenceRun],
    ref: ReferenceRun | None,
    error: BaseException | None,
) -> None:
    with _lock:
        _making.get(sandbox, {}).pop(key, None)
    if error is None:
        future.set_result(ref)  # type: ignore[arg-type]
    elif isinstance(error, Exception):
        future.set_exception(error)
    else:  # a cancelled maker: its waiters are not cancelled
        future.set_exception(RuntimeError(f"the row making it ended: {type(error).__name__}"))


async def _areference(
    task: CodeTask,
    sandbox: Sandbox,
    config: VerifierConfig,
    references: ReferenceStore | None,
) -> ReferenceRun:
    """The reference side for grading, made at most once at a time per task and sandbox.

    Rows grading samples of one task arrive together (a pass@k file lists a task's
    samples one after another) and would each make the task's reference side
    before the first one is cached. The first makes it; the others wait for it.
    Should the maker fail (a sandbox error, a cancelled row), the failure is its
    own row's, and one of the waiters makes the side instead.
    """
    while True:
        ref, key, lean = await asyncio.to_thread(_known, task, sandbox, config, references)
        if ref is not None:
            return ref
        future, mine = _claim(sandbox, key)
        if mine:
            break
        with contextlib.suppress(Exception):  # the maker's failure is reported by its row
            # The future runs already: a waiter's cancellation cannot cancel it.
            return await asyncio.wrap_future(future)
    try:
        ref = await adrive(_made(task, sandbox, key, lean, references), sandbox)
    except BaseException as exc:
        _settle(sandbox, key, future, None, exc)
        raise
    _settle(sandbox, key, future, ref, None)
    return ref


def _reference(
    task: CodeTask,
    sandbox: Sandbox,
    config: VerifierConfig,
    references: ReferenceStore | None,
) -> ReferenceRun:
    """The sync twin of ``_areference``: threads grading samples of one task at once
    (a reward function grading a batch of completions) make its side once.

    A thread that runs an event loop never waits (the maker may be one of that
    loop's coroutines) and makes its own, as does a waiter whose maker has not
    finished within the reference run's own timeout.
    """
    while True:
        ref, key, lean = _known(task, sandbox, config, references)
        if ref is not None:
            return ref
        future, mine = _claim(sandbox, key)
        if mine:
            break
        if _in_event_loop():
            return drive(_made(task, sandbox, key, lean, references), sandbox)
        try:
            return future.result(timeout=lean.reference_timeout_s)
        except TimeoutError:
            return drive(_made(task, sandbox, key, lean, references), sandbox)
        except Exception:  # the maker's failure is reported by its row; a waiter makes it
            continue
    try:
        ref = drive(_made(task, sandbox, key, lean, references), sandbox)
    except BaseException as exc:
        _settle(sandbox, key, future, None, exc)
        raise
    _settle(sandbox, key, future, ref, None)
    return ref


def _one_run(
    task: CodeTask,
    sandbox: Sandbox,
    config: VerifierConfig,
    references: ReferenceStore | None,
) -> bool:
    """Grade in one run (``sipdo.verifiers.live``): tests-only, plain tests, and no reference
    side to reuse. With a reference store the reference side is made (and kept for the
    next file) or reused instead: a row then costs the candidate's run alone."""
    return (
        references is None
        and live.applies(task, config)
        and _known(task, sandbox, config, None)[0] is None
    )


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def verify_solution(
    task: CodeTask,
    candidate: str,
    *,
    sandbox: Sandbox,
    config: VerifierConfig | None = None,
    references: ReferenceStore | None = None,
) -> Verdict:
    """Grade ``candidate`` (module source defining the entry point) on ``task``.

    Runs the task's tests and differential tests against the reference, with
    the candidate confined to its own sandbox run that holds nothing but its
    own code. A wrong or hostile candidate yields ``passed=False`` with
    feedback; ``VerificationError`` means the task or the harness is broken
    (for example, the reference fails its own tests). ``references`` keeps the
    task's reference side on disk, and reuses it from there (``refstore``).
    """
    config = config or _DEFAULT
    if _one_run(task, sandbox, config, references):
        verdict = drive(live.live_flow(task, candidate, config), sandbox)
        if verdict is not None:
            return verdict
    ref = _reference(task, sandbox, config, references)
    return drive(solution_flow(task, candidate, ref, config), sandbox)


async def averify_solution(
    task: CodeTask,
    candidate: str,
    *,
    sandbox: Sandbox,
    config: VerifierConfig | None = None,
    references: ReferenceStore | None = None,
) -> Verdict:
    """Async twin of ``verify_solution`` (uses ``sandbox.arun``)."""
    config = config or _DEFAULT
    if _one_run(task, sandbox, config, references):
        verdict = await adrive(live.live_flow(task, candidate, config), sandbox)
        if verdict is not None:
            return verdict
    ref = await _areference(task, sandbox, config, references)
    return await adrive(solution_flow(task, candidate, ref, config), sandbox)


def verify_task(
    task: CodeTask,
    *,
    sandbox: Sandbox,
    checker_solution: str | None = None,
    config: VerifierConfig | None = None,
) -> Verdict:
    """Is ``task`` sound and are its tests strong? (see ``task_check``).

    A rejected task is ``passed=False`` with the reason in ``feedback`` and
    ``checks``; ``VerificationError`` only when the harness itself fails.
    """
    return drive(task_flow(task, checker_solution, config or _DEFAULT), sandbox)


async def averify_task(
    task: CodeTask,
    *,
    sandbox: Sandbox,
    checker_solution: str | None = None,
    config: VerifierConfig | None = None,
) -> Verdict:
    """Async twin of ``verify_task``; the two reference runs overlap."""
    return await adrive(task_flow(task, checker_solution, config or _DEFAULT), sandbox)


class CodeVerifier(Verifier):
    """The code verifier as a ``Verifier``: ``verify(task, candidate_source)``."""

    def __init__(self, sandbox: Sandbox, *, config: VerifierConfig | None = None) -> None:
        self.sandbox = sandbox
        self.config = config or _DEFAULT

    def verify(self, task: CodeTask, answer: str) -> Verdict:
        return verify_solution(task, answer, sandbox=self.sandbox, config=self.config)

    async def averify(self, task: CodeTask, answer: str) -> Verdict:
        return await averify_solution(task, answer, sandbox=self.sandbox, config=self.config)


def _mutation(task: CodeTask, sandbox: Sandbox, config: VerifierConfig) -> Flow[list[MutantFate]]:
    key = _cache_key(task, config)
    ref = _cached(sandbox, key)
    if ref is None:
        [ref] = yield from reference_flow(task, config)
        _store(sandbox, key, ref)
    return (yield from mutation_flow(task, ref, config))


def analyze_mutants(
    task: CodeTask, *, sandbox: Sandbox, config: VerifierConfig | None = None
) -> list[MutantFate]:
    """How each AST mutant of the reference fares against the tests and the differential inputs.

    The same analysis ``verify_task`` scores, returned per mutant (for reports
    and benchmarks).
    """
    return drive(_mutation(task, sandbox, config or _DEFAULT), sandbox)
