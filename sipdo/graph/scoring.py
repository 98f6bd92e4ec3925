"""Filling the score table: candidates answer verified tasks, the domain grades them.

Used by the learner (the incumbent on new tasks), the optimizer (a strategy's
``Evaluate`` requests) and the promotion step (the evidence a policy needs).
Only missing samples are paid for; every answer is recorded as an attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sipdo.graph.demonstrations import of_candidate
from sipdo.graph.runtime import Deps, Tally
from sipdo.graph.state import CandidateState, DemonstrationState, ScoreTable, Task
from sipdo.plugins.optimizers.scores import cell_of, combine


def jobs(
    table: Mapping[str, Mapping[str, Any]],
    cids: Iterable[str],
    task_ids: Iterable[str],
    samples: int,
) -> list[tuple[str, str]]:
    """(candidate, task) pairs to run: one per sample missing from the table."""
    out: list[tuple[str, str]] = []
    task_ids = list(task_ids)
    for cid in dict.fromkeys(cids):
        row = table.get(cid, {})
        for tid in dict.fromkeys(task_ids):
            have = int(row[tid]["n"]) if tid in row else 0
            out.extend([(cid, tid)] * max(0, samples - have))
    return out


async def score(
    deps: Deps,
    tally: Tally,
    *,
    table: Mapping[str, Mapping[str, Any]],
    candidates: Mapping[str, CandidateState],
    tasks: Mapping[str, Task],
    cids: Sequence[str],
    task_ids: Sequence[str],
    samples: int = 1,
    pool: Mapping[str, DemonstrationState] | None = None,
) -> tuple[ScoreTable, list[dict[str, Any]]]:
    """Run the missing samples concurrently; returns the changed cells (merged with
    what ``table`` held) and the raw results ``{"cid", "task", "answer", "verdict",
    "reply"}``. A candidate's demonstrations (ids into ``pool``) are shown before
    each task."""
    todo = jobs(table, cids, [t for t in task_ids if t in tasks], samples)
    shown = {cid: of_candidate(candidates[cid], pool or {}) for cid in dict.fromkeys(cids)}
    results = await asyncio.gather(
        *(
            deps.solve_and_grade(tally, tasks[tid], candidates[cid]["text"], demos=shown[cid])
            for cid, tid in todo
        )
    )
    delta: ScoreTable = {}
    raw: list[dict[str, Any]] = []
    for (cid, tid), result in zip(todo, results, strict=True):
        verdict, answer = result["verdict"], result["answer"]
        old = delta.get(cid, {}).get(tid) or table.get(cid, {}).get(tid)
        cell: Any = combine(old, cell_of(verdict, answer))
        delta.setdefault(cid, {})[tid] = cell
        raw.append({"cid": cid, **result})
        deps.record(
            "record_attempt",
            task_id=tid,
            prompt_version_id=cid,
            role="learner",
            answer=answer,
            passed=bool(verdict.get("passed")),
            score=float(verdict.get("score", 0.0)),
            feedback=str(verdict.get("feedback", "")),
        )
    return delta, raw


def overlay(base: Mapping[str, Mapping[str, Any]], *deltas: Mapping[str, Any]) -> ScoreTable:
    """``base`` with the cells of ``deltas`` laid over it (pure)."""
    out: ScoreTable = {cid: dict(row) for cid, row in base.items()}
    for delta in deltas:
        for cid, row in delta.items():
            out.setdefault(cid, {}).update(row)
    return out
