"""Promotion: the policy decides on the candidate a strategy step put forward.

``promote`` commits the step's evaluations and new candidates to the state,
fills the evidence the promotion policy asks for (evaluations counted like any
other), and asks the policy. A promoted candidate waits in
``pending_candidate`` for ``approve``; anything else is recorded as a failed
step with its textual reward. A budget stop in the middle of a step ends in
``commit_flow`` instead, so nothing already paid for is lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sipdo.graph.events import emit
from sipdo.graph.runtime import Deps, Tally
from sipdo.graph.scoring import overlay, score
from sipdo.graph.state import PromptAttemptEntry, SipdoState
from sipdo.plugins.optimizers.gates import counterfactuals
from sipdo.plugins.optimizers.scores import Table, mean_score, value

EVIDENCE_ROUNDS = 3


def commit_flow(state: Mapping[str, Any]) -> dict[str, Any]:
    """The update that folds a step's journal into the state (its cells, its candidates)."""
    flow = state.get("flow") or {}
    return {
        "score_table": dict(flow.get("cells", {})),
        "candidates": dict(flow.get("new", {})),
        "flow": None,
        "step": int(flow.get("step", state.get("step", 0))),
    }


def textual_reward(
    decision: Mapping[str, Any],
    table: Table,
    cand: str,
    inc: str,
    task_ids: Sequence[str],
    flags: Sequence[str],
    describe_still: Sequence[str],
) -> str:
    """The TRPrompt-style textual reward of one candidate."""
    failures = [t for t in task_ids if value(table.get(inc, {}).get(t)) < 1]
    solved = [t for t in task_ids if t not in failures]
    broken = list(decision.get("losses", []))
    text = f"fixed {len(decision.get('wins', []))}/{len(failures)} failures; "
    text += f"broke {len(broken)}/{len(solved)} solved tasks"
    if broken:
        text += f" ({', '.join(broken[:5])})"
    if flags:
        text += "; task-specific rules: " + "; ".join(flags[:3])
    return text + (". Still failing: " + " | ".join(describe_still) if describe_still else ".")


def attempt_entry(
    state: Mapping[str, Any],
    step: int,
    cid: str | None,
    decision: Mapping[str, Any],
    feedback: str,
    evaluated: list[str],
    notes: Mapping[str, Any],
    scores: Mapping[str, float],
) -> PromptAttemptEntry:
    return {
        "kind": "prompt_attempt",
        "iteration": int(state.get("iteration", 0)),
        "step": step,
        "version_id": cid,
        "accepted": bool(decision.get("promoted")),
        "fixed": list(decision.get("wins", [])),
        "broken": list(decision.get("losses", [])),
        "scores": dict(scores),
        "feedback": feedback,
        "reason": str(decision.get("reason", "")),
        "evaluated": evaluated,
        "notes": dict(notes),
    }


def conclude(
    deps: Deps,
    state: Mapping[str, Any],
    cand: Mapping[str, Any],
    accepted: bool,
    feedback: str,
    scores: Mapping[str, float],
    decision: Mapping[str, Any],
) -> dict[str, Any]:
    """Record a decided candidate (store + event); returns its ``prompt_versions`` entry."""
    parents = list(cand.get("parent_ids", []))
    deps.record(
        "record_prompt_version",
        version_id=cand["id"],
        text=cand["text"],
        parent_id=parents[0] if parents else None,
        accepted=accepted,
        scores=dict(scores),
        feedback=feedback,
        iteration=int(state.get("iteration", 0)),
        parent_ids=parents,
        components=dict(cand.get("components", {})),
        operator=str(cand.get("operator", "")),
        meta={
            "flags": list(cand.get("flags", [])),
            "decision": dict(decision),
            **{k: list(cand[k]) for k in ("refused", "demonstrations") if cand.get(k)},
            # a strategy's lineage facts `sipdo show` prints (E-SPL ratings, GEPA fronts)
            **{k: v for k, v in (cand.get("notes") or {}).items() if k in ("rating", "front")},
        },
    )
    emit(
        "prompt_candidate",
        version_id=cand["id"],
        accepted=accepted,
        fixed=len(decision.get("wins", [])),
        broken=len(decision.get("losses", [])),
        reason=str(decision.get("reason", "")),
    )
    return {
        "version_id": cand["id"],
        "text": cand["text"],
        "parent_id": parents[0] if parents else None,
        "parent_ids": parents,
        "operator": cand.get("operator", ""),
        "accepted": accepted,
        "scores": dict(scores),
        "feedback": feedback,
        "iteration": int(state.get("iteration", 0)),
    }


async def promote(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """Decide on the step's selected candidate under the run's promotion policy."""
    flow: dict[str, Any] = dict(state["flow"] or {})  # routing comes here once a flow ended
    selection = flow["selection"]
    update = commit_flow(state)
    candidates = {**state.get("candidates", {}), **flow.get("new", {})}
    table = overlay(state.get("score_table", {}), flow.get("cells", {}))
    inc, cid = state["version_id"], selection.get("candidate")
    task_ids = list(state.get("verified_tasks", {}))
    tally = Tally()
    if cid is None or cid not in candidates or cid == inc:
        why = selection.get("error") or (
            "no candidate proposed" if cid is None else f"cannot promote {cid}"
        )
        decision: dict[str, Any] = {
            "candidate_id": cid or "",
            "promoted": False,
            "policy": deps.gate.name,
            "reason": why,
            "wins": [],
            "losses": [],
            "stats": {},
        }
    elif candidates[cid].get("refused"):
        decision = {
            "candidate_id": cid,
            "promoted": False,
            "policy": deps.gate.name,
            "reason": "demonstrations refused: " + "; ".join(candidates[cid]["refused"]),
            "wins": [],
            "losses": [],
            "stats": {},
        }
    else:
        for _ in range(EVIDENCE_ROUNDS):
            wanted = deps.gate.evidence(table, cid, inc, task_ids, stochastic=deps.stochastic)
            if not wanted:
                break
            for ev in wanted:
                cells, _ = await score(
                    deps,
                    tally,
                    table=table,
                    candidates=candidates,
                    tasks=state["verified_tasks"],
                    cids=list(ev.candidate_ids),
                    task_ids=list(ev.task_ids),
                    samples=ev.samples,
                    pool=state.get("demonstrations", {}),
                )
                table = overlay(table, cells)
                update["score_table"] = overlay(update["score_table"], cells)
        decision = deps.gate.decide(table, cid, inc, task_ids, others=list(candidates))
        decision["others"] = counterfactuals(
            deps.gate.name,
            table,
            cid,
            inc,
            task_ids,
            others=list(candidates),
            stochastic=deps.stochastic,
        )
        decision = _veto_specific(decision, candidates[cid], allowed=deps.allow_specific)
    notes = {
        **selection.get("notes", {}),
        **({"raw_reply": selection["raw"]} if selection.get("raw") else {}),
    }
    evaluated = list(flow.get("new", {}))
    versions = []
    for other in evaluated:  # the step's other candidates are decided by not being selected
        if other == cid:
            continue
        versions.append(_also_ran(deps, state, table, candidates[other], inc, task_ids))
    update |= {
        "strategy_state": dict(selection.get("state", {})),
        "budget_used": deps.fold(state, tally, "promote"),
        "prompt_versions": versions,
        "last_approved": False,
    }
    if cid is None or cid not in candidates:
        emit("no_candidate", reason=str(decision["reason"]))
        entry = attempt_entry(
            state, update["step"], cid, decision, "no candidate", evaluated, notes, {}
        )
        return update | {"history": [entry], "decisions": [decision]}
    cand = candidates[cid]
    still = [t for t in task_ids if t in table.get(cid, {}) and value(table[cid][t]) < 1]
    scores = {
        "fixed": float(len(decision["wins"])),
        "broken": float(len(decision["losses"])),
        "pass_rate": round(mean_score(table, cid, task_ids), 6),
    }
    feedback = textual_reward(
        decision,
        table,
        cid,
        inc,
        task_ids,
        cand.get("flags", []),
        [f"{t}: {str(table[cid][t].get('feedback', ''))[:200]}" for t in still[:3]],
    )
    if decision["promoted"]:
        pending = {
            **cand,
            "decision": decision,
            "feedback": feedback,
            "scores": scores,
            "notes": notes,
            "evaluated": evaluated,
        }
        return update | {"pending_candidate": pending, "pending_decision": decision}
    feedback = f"{feedback} -> {decision['reason']}"
    versions.append(conclude(deps, state, cand, False, feedback, scores, decision))
    entry = attempt_entry(state, update["step"], cid, decision, feedback, evaluated, notes, scores)
    return update | {"history": [entry], "decisions": [decision]}


def _veto_specific(
    decision: dict[str, Any], cand: Mapping[str, Any], *, allowed: bool
) -> dict[str, Any]:
    """A candidate the policy promotes is kept back when it is specific to the training tasks."""
    flags = list(cand.get("flags", []))
    if not decision["promoted"] or not flags or allowed:
        return decision
    reason = (
        f"{decision['reason']}; but not promoted: specific to the training tasks "
        f"({'; '.join(flags[:3])}); run with allow_specific to promote such candidates"
    )
    return {**decision, "promoted": False, "reason": reason, "vetoed": flags}


def _also_ran(
    deps: Deps,
    state: Mapping[str, Any],
    table: Table,
    cand: Mapping[str, Any],
    inc: str,
    task_ids: Sequence[str],
) -> dict[str, Any]:
    """A candidate the step evaluated but did not select: recorded, never promoted."""
    rate = round(
        mean_score(table, cand["id"], [t for t in task_ids if t in table.get(cand["id"], {})]), 6
    )
    decision = {
        "candidate_id": cand["id"],
        "promoted": False,
        "policy": deps.gate.name,
        "reason": "not selected by the strategy",
        "wins": [],
        "losses": [],
    }
    return conclude(
        deps, state, cand, False, "not selected by the strategy", {"pass_rate": rate}, decision
    )
