"""Drive a strategy's flow by hand: a scripted optimizer model and scripted verdicts.

``world(...)`` builds an ``OptimizerView`` from candidates given as instruction
texts, a score table given as pass/fail rows and plain tasks. ``run(...)`` sends
each ``Ask`` to a ``ScriptedChatModel`` through the real structured-reply path
and answers each ``Evaluate`` with ``verdict(text, task_id)``: the strategy's
logic is tested on its own, without the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sipdo.plugins.optimizers.base import Ask, Evaluate, OptimizerView, Selection, StrategyFlow
from sipdo.plugins.optimizers.candidates import INSTRUCTIONS, NewCandidate, full_text, render
from sipdo.plugins.optimizers.scores import cell_of
from sipdo.structured import invoke_structured
from sipdo.testing import ScriptedChatModel

# pass/fail, or a partial score in [0, 1] (a pass only at 1.0)
Verdict = Callable[[str, str], bool | float]


def verdict_cell(outcome: bool | float, task_id: str) -> dict[str, Any]:
    if isinstance(outcome, bool):
        return cell_of({"passed": outcome, "feedback": f"bad {task_id}"}, "a")
    passed = outcome >= 1.0
    return cell_of({"passed": passed, "score": outcome, "feedback": f"bad {task_id}"}, "a")


def candidate(
    cid: str, components: str | Mapping[str, str], parents: Sequence[str] = ()
) -> dict[str, Any]:
    comps = {INSTRUCTIONS: components} if isinstance(components, str) else dict(components)
    return {
        "id": cid,
        "text": render(comps),
        "components": comps,
        "parent_ids": list(parents),
        "operator": "initial" if not parents else "test",
    }


def row(passes: str, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``"10."``: pass on the first task, fail on the second, no cell on the third."""
    out = {}
    for mark, tid in zip(passes, task_ids, strict=True):
        if mark != ".":
            out[tid] = cell_of({"passed": mark == "1", "feedback": f"wrong on {tid}"}, "ans")
    return out


def world(
    candidates: Sequence[dict[str, Any]],
    rows: Mapping[str, str],
    task_ids: Sequence[str],
    *,
    incumbent: str | None = None,
    state: Mapping[str, Any] | None = None,
    decisions: Sequence[Mapping[str, Any]] = (),
    seed: int = 0,
) -> OptimizerView:
    data = {
        "incumbent": incumbent or candidates[0]["id"],
        "candidates": {c["id"]: c for c in candidates},
        "score_table": {cid: row(marks, task_ids) for cid, marks in rows.items()},
        "tasks": {t: {"id": t, "prompt": f"solve {t}", "weakness": "edge cases"} for t in task_ids},
        "decisions": list(decisions),
        "attempts": [],
        "strategy_state": dict(state or {}),
        "iteration": 1,
        "step": 1,
        "seed": seed,
        "gate": "strict",
        "budget_left": None,
    }
    return OptimizerView(data, lambda f: f"{f['task']['id']}: {f['verdict']['feedback']}")


@dataclass
class Run:
    selection: Selection
    asks: list[Ask] = field(default_factory=list)
    evaluations: list[Evaluate] = field(default_factory=list)
    new: dict[str, NewCandidate] = field(default_factory=dict)
    batches: int = 0

    def text(self, cid: str) -> str:
        return self.new[cid].text


def run(
    flow: StrategyFlow,
    view: OptimizerView,
    model: ScriptedChatModel,
    verdict: Verdict,
) -> Run:
    """Drive ``flow`` to its ``Selection``."""
    texts = {cid: full_text(c["components"]) for cid, c in view.candidates.items()}
    out = Run(Selection(None))
    results: list[Any] | None = None
    while True:
        try:
            batch = next(flow) if results is None else flow.send(results)
        except StopIteration as stop:
            out.selection = stop.value
            return out
        out.batches += 1
        results = []
        for req in batch:
            if isinstance(req, Ask):
                out.asks.append(req)
                results.append(invoke_structured(model, req.messages, req.schema))
                continue
            out.evaluations.append(req)
            result: dict[str, dict[str, Any]] = {}
            for cand in req.candidates:
                if isinstance(cand, NewCandidate):
                    out.new[cand.id] = cand
                    texts[cand.id] = full_text(cand.components)
                    cid = cand.id
                else:
                    cid = cand
                result[cid] = {t: verdict_cell(verdict(texts[cid], t), t) for t in req.task_ids}
            results.append(result)
