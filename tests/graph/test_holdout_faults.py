"""The sandbox engine lost during held-out grading: waited out, or a resumable stop.

``LosingEngine`` is the real process sandbox with a fault injected in front of
it, for the held-out grading runs only: while armed, its next runs fail the way
a lost engine makes them fail (``SandboxError``, as a dead ``dockerd``'s
connection gives; or exit 137 with no output, as a container killed from
outside looks), then it delegates again. The held-out numbers must come out
as without the fault (a sample is never graded wrong for the engine's sake),
and an engine that stays down past ``SIPDO_SANDBOX_RETRY_S`` stops the run with
``SandboxUnavailableError`` (``sipdo run``: exit 75) with nothing graded, and
the run resumes from its checkpoint once the engine is back.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver

from sipdo.errors import SandboxError, SandboxUnavailableError
from sipdo.graph import Budget
from sipdo.sandbox import Sandbox
from sipdo.sandbox.base import ExecResult, Job
from sipdo.sandbox.process import ProcessSandbox
from sipdo.store import RunStore
from sipdo.testing import ScriptedChatModel
from tests.graph import world
from tests.graph.test_holdout import HELD_OUT, TRAINING, build, held_out_tasks, learner
from tests.graph.test_loop import INITIAL, run, seeds

RIGHT = "# the learner's right answer\n"


def marking_learner() -> ScriptedChatModel:
    """Right under ``FIX`` (as ``test_holdout.learner``); its right held-out answers carry
    ``RIGHT``, so the runs that grade them (not the task's reference runs) can be told."""

    def respond(messages: list[BaseMessage]) -> str:
        system, entry = str(messages[0].content), world.entry_point_of(messages)
        if "FIX" not in system:
            return world.fenced(world.wrong(entry))
        return world.fenced((RIGHT if entry in HELD_OUT else "") + world.reference(entry))

    return ScriptedChatModel(responder=respond, name="learner")


def held_out_run(job: Job, *, right_answers_only: bool) -> bool:
    """A run of the held-out grading (of a right answer only, if asked)."""
    texts = list(job.files.values())
    if right_answers_only:
        return any(RIGHT.encode() in t for t in texts)
    return any(f"def {name}(".encode() in t for t in texts for name in HELD_OUT)


class LosingEngine(Sandbox):
    """``inner``, but the next ``errors`` armed runs raise and the ``killed`` after
    them come back as a killed container's."""

    def __init__(self, inner: Sandbox, *, errors: int, killed: int, right_only: bool) -> None:
        super().__init__(limits=inner.limits, max_concurrency=inner.max_concurrency)
        self.inner, self.kind, self.isolation = inner, inner.kind, inner.isolation
        self.errors, self.killed, self.right_only = errors, killed, right_only
        self.met = 0
        self._lock = threading.Lock()

    def _execute(self, job: Job) -> ExecResult:
        if held_out_run(job, right_answers_only=self.right_only):
            with self._lock:
                if self.errors:
                    self.errors -= 1
                    self.met += 1
                    raise SandboxError("lost the connection to the engine (injected)")
                if self.killed:
                    self.killed -= 1
                    self.met += 1
                    return ExecResult(137, "", "", duration_s=0.01)
        return self.inner.run(job.files, job.command, stdin=job.stdin, limits=job.limits)


def graph(engine: Sandbox, model: ScriptedChatModel, store: RunStore, **kw: Any) -> Any:
    """One iteration of the loop over ``engine``, the held-out set graded into ``store``."""
    return build(
        engine,
        model,
        budget=Budget(iterations=1, tasks_per_iteration=2),
        holdout=held_out_tasks(),
        run_store=store,
        **kw,
    )


def graded(store: RunStore, eval_id: str) -> list[tuple[str, str, bool, bool]]:
    return sorted(
        (r.task_id, r.status, r.base_passed, r.full_passed) for r in store.eval_results(eval_id)
    )


async def test_engine_lost_while_grading_held_out_is_waited_out_not_graded_wrong(
    process_sandbox: ProcessSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIPDO_SANDBOX_RETRY_S", "60")
    # The promoted version's right answers meet the fault: 2 lost runs, then a killed one.
    engine = LosingEngine(process_sandbox, errors=2, killed=1, right_only=True)
    with RunStore(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        g = graph(engine, marking_learner(), store)
        out, _ = await run(g, {"prompt": INITIAL, "seed_tasks": seeds(*TRAINING)}, run_id="hf1")
        promoted = graded(store, out["holdout"][1]["eval_id"])

    assert engine.met == 3  # the fault did happen, all of it
    assert [(h["passed"], h["total"]) for h in out["holdout"]] == [(0, 2), (2, 2)]
    assert [h["problems"] for h in out["holdout"]] == [0, 0]
    assert [row[1:] for row in promoted] == [("graded", True, True)] * 2


async def test_engine_down_past_the_limit_stops_resumably_with_nothing_graded(
    process_sandbox: ProcessSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIPDO_SANDBOX_RETRY_S", "1")
    engine = LosingEngine(process_sandbox, errors=10**6, killed=0, right_only=False)
    with RunStore(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        g = graph(engine, learner(), store, checkpointer=InMemorySaver())
        state: Any = {"prompt": INITIAL, "seed_tasks": seeds(*TRAINING)}
        with pytest.raises(SandboxUnavailableError, match="sandbox engine still failing"):
            await run(g, state, run_id="hf2", thread_id="hf2")
        [first] = store.list_evals(source_run_id="hf2")
        assert first.status == "interrupted"
        assert store.eval_results(first.eval_id) == []  # nothing graded while it was down
        assert engine.met >= 2  # retried before giving up

        engine.errors = 0  # the engine is back: the run resumes from its checkpoint
        out, _ = await run(g, None, run_id="hf2", thread_id="hf2")
        rows = graded(store, out["holdout"][0]["eval_id"])

    assert [(h["passed"], h["total"]) for h in out["holdout"]] == [(0, 2), (2, 2)]
    assert out["holdout"][0]["eval_id"] == first.eval_id  # the same eval, resumed
    assert [row[1:] for row in rows] == [("graded", False, False)] * 2
