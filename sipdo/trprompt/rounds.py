"""A round's two graded passes: prompts for the training queries, and for the held-out ones.

Each graded prompt is appended to the round's JSONL file as soon as it is
graded, and a resumed round skips what the file already holds: the learner and
the sandbox are the slow part, and their work is never done twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from sipdo.plugins.domains.base import Domain
from sipdo.store.export import query_of
from sipdo.store.records import TaskRecord
from sipdo.trprompt.checkpoint import append_jsonl, read_jsonl, round_dir
from sipdo.trprompt.dataset import Example, TrainingSet
from sipdo.trprompt.outcome import OpenedSandbox, answer_and_grade
from sipdo.trprompt.writer import PromptModel


@dataclass
class RoundContext:
    """What every round uses; the learner model is resolved on first use only."""

    directory: Path
    data: TrainingSet
    domain: Domain
    sandbox: OpenedSandbox
    learner: Callable[[], BaseChatModel]
    emit: Callable[[dict[str, Any]], None]
    _learner: BaseChatModel | None = None

    def learner_model(self) -> BaseChatModel:
        if self._learner is None:
            self._learner = self.learner()
        return self._learner

    def query(self, key: str) -> str:
        """The text a solver is shown for the task ``key`` (as the export writes it)."""
        task = self.data.tasks[key]
        record = TaskRecord(str(task.get("id")), task, "seed", "", 1, "")
        return query_of(record)


async def _graded(
    ctx: RoundContext, writer: PromptModel, key: str, *, sample: int, seed: int
) -> dict[str, Any]:
    query = ctx.query(key)
    prompt = (
        await writer.awrite(query) if sample == 0 else writer.write(query, sample=True, seed=seed)
    )
    outcome = await answer_and_grade(
        ctx.learner_model(), ctx.domain, ctx.sandbox, ctx.data.tasks[key], prompt
    )
    row: dict[str, Any] = {"key": key, "sample": sample, "prompt": prompt}
    if outcome is None:
        return {**row, "ungradable": True}
    return {
        **row,
        "answer": outcome.answer,
        "passed": outcome.passed,
        "score": outcome.score,
        "reward": outcome.reward,
    }


async def _pass(
    ctx: RoundContext,
    writer: PromptModel,
    path: Path,
    phase: str,
    k: int,
    jobs: list[tuple[str, int]],
) -> list[dict[str, Any]]:
    """Grade every (key, sample) job not already in ``path``; all rows of ``path``."""
    done = {(r["key"], r["sample"]): r for r in read_jsonl(path)}
    ctx.emit({"event": "phase", "phase": phase, "round": k, "total": len(jobs)})
    for i, (key, sample) in enumerate(jobs, 1):
        row = done.get((key, sample))
        if row is None:
            row = await _graded(ctx, writer, key, sample=sample, seed=k * 1000 + sample)
            append_jsonl(path, row)
            done[(key, sample)] = row
        ctx.emit({"event": "advance", "phase": phase, "done": i, "passed": row.get("passed")})
    return [done[job] for job in jobs]


async def generate_round(
    k: int, ctx: RoundContext, writer: PromptModel, samples: int
) -> list[Example]:
    """Step 1 of round ``k``: graded prompts for every training query, as new examples."""
    jobs = [(key, s) for key in ctx.data.train for s in range(samples)]
    path = round_dir(ctx.directory, k) / "outcomes.jsonl"
    rows = await _pass(ctx, writer, path, "generate", k, jobs)
    return [
        Example(
            key=r["key"],
            query=ctx.query(r["key"]),
            prompt=r["prompt"],
            reward=r["reward"],
            score=float(r["score"]),
            passed=bool(r["passed"]),
            origin=f"round-{k}",
        )
        for r in rows
        if not r.get("ungradable") and r["prompt"].strip()
    ]


async def grade_heldout(
    k: int, ctx: RoundContext, writer: PromptModel
) -> tuple[float | None, float | None]:
    """(mean verifier score, pass rate) of the learner on the held-out queries under the
    prompts written for them; (None, None) when the run has no held-out query."""
    if not ctx.data.heldout:
        return None, None
    path = round_dir(ctx.directory, k) / "heldout.jsonl"
    rows = await _pass(ctx, writer, path, "heldout", k, [(key, 0) for key in ctx.data.heldout])
    graded = [r for r in rows if not r.get("ungradable")]
    if not graded:
        return None, None
    reward = sum(float(r["score"]) for r in graded) / len(graded)
    return reward, sum(bool(r["passed"]) for r in graded) / len(graded)
