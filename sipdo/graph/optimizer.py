"""The optimizer: drives the strategy's flow, one batch of requests per graph step.

A strategy step (``Strategy.step(view)``) is a generator of request batches.
This node re-creates it from the view, replays the results already in the
step's journal (``state["flow"]``), executes the next batch — model calls and
evaluations, concurrently — and stores the results. Running one batch per graph
step means the checkpointer saves the journal after every batch: a run killed
mid-step loses at most the batch in flight, and the replayed flow continues
exactly where the uninterrupted one would have. Evaluations stay in the
journal's ``cells`` until ``promote`` commits them with the decision, so the
view a replay is built from never changes during a step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sipdo.errors import PluginError
from sipdo.graph.budget import left
from sipdo.graph.demonstrations import of_candidate
from sipdo.graph.runtime import Deps, Tally
from sipdo.graph.scoring import overlay, score
from sipdo.graph.state import CandidateState, FlowState, SipdoState
from sipdo.plugins.optimizers.base import (
    Ask,
    OptimizerView,
    Request,
    Selection,
    StrategyFlow,
)
from sipdo.plugins.optimizers.candidates import NewCandidate, as_state, demonstration_ids
from sipdo.plugins.optimizers.demos import refusals
from sipdo.structured import ReplyFormat, StructuredResult

MAX_BATCHES = 16  # request batches one step may make (bounds the graph's recursion)


def view_of(state: Mapping[str, Any], deps: Deps) -> OptimizerView:
    """The strategy's view of the state at the start of a step."""
    iteration = int(state.get("iteration", 0))
    attempts = [
        h
        for h in state.get("history", [])
        if h.get("kind") == "prompt_attempt" and h.get("iteration") == iteration
    ]
    data = {
        "incumbent": state["version_id"],
        "candidates": state.get("candidates", {}),
        "score_table": state.get("score_table", {}),
        "tasks": state.get("verified_tasks", {}),
        "decisions": state.get("decisions", []),
        "attempts": attempts,
        "strategy_state": state.get("strategy_state", {}),
        "iteration": iteration,
        "step": int(state.get("step", 0)) + 1,
        "seed": deps.seed,
        "gate": deps.gate.name,
        "budget_left": left(deps.budget, state.get("budget_used", {})),
        "demonstrations": state.get("demonstrations", {}) if deps.demos.enabled else {},
        "demo_limit": deps.demos.limit,
        "demo_tokens": deps.demos.token_budget,
    }
    return OptimizerView(data, deps.domain.describe_failure)


def _encode(req: Request, result: Any) -> Any:
    if isinstance(req, Ask):
        value = result.value.model_dump(mode="json") if result.value is not None else None
        return {
            "value": value,
            "error": result.error,
            "attempts": result.attempts,
            "raw": list(result.raw),
        }
    return result


def _decode(req: Request, data: Any) -> Any:
    if isinstance(req, Ask):
        schema = req.schema.schema if isinstance(req.schema, ReplyFormat) else req.schema
        value = schema.model_validate(data["value"]) if data["value"] is not None else None
        return StructuredResult(value, data["error"], int(data["attempts"]), tuple(data["raw"]))
    return data


def _selection_data(sel: Selection) -> dict[str, Any]:
    return {
        "candidate": sel.candidate,
        "state": dict(sel.state),
        "note": sel.note,
        "error": sel.error,
        "raw": sel.raw[-4000:],
        "notes": dict(sel.notes),
    }


def _ended(stop: StopIteration, name: str) -> Selection:
    if not isinstance(stop.value, Selection):
        raise PluginError(f"strategy {name!r} ended without a Selection") from None
    return stop.value


def advance(flow: StrategyFlow, results: list[Any], name: str) -> list[Request] | Selection:
    """Send one batch's results into ``flow``: its next batch, or how it ended."""
    try:
        return flow.send(results)
    except StopIteration as stop:
        return _ended(stop, name)


def replay(flow: StrategyFlow, journal: list[list[Any]], name: str) -> list[Request] | Selection:
    """Feed the recorded results into a fresh flow: its next batch, or how it ended."""
    try:
        batch: list[Request] | Selection = next(flow)
    except StopIteration as stop:
        return _ended(stop, name)
    for number, results in enumerate(journal):
        if isinstance(batch, Selection) or len(results) != len(batch):
            raise PluginError(
                f"strategy {name!r} is not deterministic: on replay, batch {number} differs "
                "from the recorded one"
            )
        batch = advance(flow, [_decode(r, d) for r, d in zip(batch, results, strict=True)], name)
    return batch


async def _run(
    deps: Deps,
    tally: Tally,
    state: SipdoState,
    flow: FlowState,
    req: Request,
) -> tuple[Any, dict[str, CandidateState], dict[str, Any]]:
    """Execute one request: (result for the flow, new candidates, new cells)."""
    if isinstance(req, Ask):
        return await deps.structured(tally, "optimizer", req.messages, req.schema), {}, {}
    known: dict[str, Any] = {**state.get("candidates", {}), **flow.get("new", {})}
    new: dict[str, CandidateState] = {}
    cids: list[str] = []
    for cand in req.candidates:
        if isinstance(cand, NewCandidate):
            if cand.id not in known:
                record = as_state(
                    cand,
                    known,
                    tasks=state.get("verified_tasks", {}).values(),
                    iteration=int(state.get("iteration", 0)),
                    step=flow["step"],
                )
                refused = _demonstration_refusals(deps, state, cand)
                if refused:
                    record["refused"] = refused
                shown = of_candidate(record, state.get("demonstrations", {}))
                if shown:
                    record["demonstrations"] = [
                        {k: d[k] for k in ("id", "task_id", "reply", "tokens") if k in d}
                        for d in shown
                    ]
                new[cand.id] = known[cand.id] = record  # type: ignore[assignment]
                _record_candidate(deps, record)
            if known[cand.id].get("refused"):
                continue  # never shown to the solver, so never scored
            cids.append(cand.id)
        elif cand in known:
            if not known[cand].get("refused"):
                cids.append(cand)
        else:
            raise PluginError(f"strategy {flow['strategy']!r} evaluated unknown candidate {cand!r}")
    table = overlay(state.get("score_table", {}), flow.get("cells", {}))
    cells, _ = await score(
        deps,
        tally,
        table=table,
        candidates=known,
        tasks=state.get("verified_tasks", {}),
        cids=cids,
        task_ids=list(req.task_ids),
        samples=max(1, req.samples),
        pool=state.get("demonstrations", {}),
    )
    merged = overlay(table, cells)
    result = {
        cid: {t: merged[cid][t] for t in req.task_ids if t in merged.get(cid, {})} for cid in cids
    }
    return result, new, cells


def _demonstration_refusals(deps: Deps, state: SipdoState, cand: NewCandidate) -> list[str]:
    """Why ``cand``'s demonstrations cannot be used (hygiene, bounds); [] if it has none."""
    ids = demonstration_ids(cand.components)
    if not ids:
        return []
    return refusals(
        ids,
        state.get("demonstrations", {}),
        state.get("verified_tasks", {}),
        held_out=deps.held_out,
        settings=deps.demos,
    )


def _record_candidate(deps: Deps, cand: Mapping[str, Any]) -> None:
    parents = list(cand.get("parent_ids", []))
    deps.record(
        "record_prompt_version",
        version_id=cand["id"],
        text=cand["text"],
        parent_id=parents[0] if parents else None,
        accepted=False,
        scores={},
        feedback="being evaluated",
        iteration=int(cand.get("iteration", 0)),
        parent_ids=parents,
        components=dict(cand.get("components", {})),
        operator=str(cand.get("operator", "")),
        meta={
            "flags": list(cand.get("flags", [])),
            "rationale": cand.get("rationale", ""),
            **{k: list(cand[k]) for k in ("refused", "demonstrations") if cand.get(k)},
        },
    )


async def optimizer(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """Advance the current strategy step by one batch (starting a step if none runs)."""
    flow: FlowState = state.get("flow") or {
        "strategy": deps.strategy.name,
        "step": int(state.get("step", 0)) + 1,
        "journal": [],
        "cells": {},
        "new": {},
    }
    name = flow["strategy"]
    steps = deps.strategy.step(view_of(state, deps))
    batch = replay(steps, flow["journal"], name)
    if isinstance(batch, Selection):
        return {"flow": {**flow, "selection": _selection_data(batch)}}
    if len(flow["journal"]) >= MAX_BATCHES:
        error = f"the step made more than {MAX_BATCHES} request batches"
        return {"flow": {**flow, "selection": _selection_data(Selection(None, error=error))}}
    tally = Tally()
    outcomes = await asyncio.gather(*(_run(deps, tally, state, flow, r) for r in batch))
    new = dict(flow.get("new", {}))
    cells = overlay(flow.get("cells", {}))
    for _, made, changed in outcomes:
        new.update(made)
        cells = overlay(cells, changed)
    journal = [*flow["journal"], [_encode(r, o[0]) for r, o in zip(batch, outcomes, strict=True)]]
    update: dict[str, Any] = {**flow, "journal": journal, "cells": cells, "new": new}
    # The step may end right after this batch: find out now, so routing goes to promote.
    after = advance(steps, [o[0] for o in outcomes], name)
    if isinstance(after, Selection):
        update["selection"] = _selection_data(after)
    return {"flow": update, "budget_used": deps.fold(state, tally, "optimizer")}
