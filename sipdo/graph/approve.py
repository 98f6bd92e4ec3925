"""Approval: a promoted candidate becomes the incumbent, after a human says yes when asked.

This is its own node because an interrupted node re-runs from its start on
resume: nothing before ``interrupt()`` may call a model or evaluate anything,
so the evaluations and the policy's decision happen in ``promote``.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import interrupt

from sipdo.graph.demonstrations import of_candidate
from sipdo.graph.holdout import grade_version
from sipdo.graph.promote import attempt_entry, conclude
from sipdo.graph.runtime import Deps
from sipdo.graph.state import SipdoState
from sipdo.plugins.optimizers.candidates import unified_diff


def _approved(answer: Any) -> bool:
    if isinstance(answer, dict):
        answer = answer.get("approved", answer.get("approve"))
    if isinstance(answer, str):
        return answer.strip().lower() in ("y", "yes", "true", "approve", "approved", "ok")
    return answer is True


def approval_request(state: SipdoState, cand: dict[str, Any]) -> dict[str, Any]:
    """The payload of the approval ``interrupt()`` (documented in the README)."""
    decision = cand["decision"]
    return {
        "kind": "approve_prompt",
        "version_id": cand["id"],
        "parent_id": (cand.get("parent_ids") or [None])[0],
        "parent_ids": list(cand.get("parent_ids", [])),
        "operator": cand.get("operator", ""),
        "current": state["current_prompt"],
        "candidate": cand["text"],
        "diff": unified_diff(state["current_prompt"], cand["text"], "current", "candidate"),
        "fixed": list(decision.get("wins", [])),
        "broken": list(decision.get("losses", [])),
        "policy": decision.get("policy", ""),
        "reason": decision.get("reason", ""),
        "feedback": cand.get("feedback", ""),
    }


async def approve(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """Apply the promoted candidate, after ``interrupt()`` when ``approve_prompts``."""
    cand = state.get("pending_candidate")
    if cand is None:  # routing only comes here with a candidate
        raise RuntimeError("approve ran without a pending candidate")
    decision = dict(cand["decision"])
    accepted = True
    if deps.approve_prompts:
        accepted = _approved(interrupt(approval_request(state, cand)))
        decision["reason"] += "; approved by the reviewer" if accepted else ""
        if not accepted:
            decision |= {"promoted": False, "reason": "rejected by the reviewer"}
    feedback = f"{cand['feedback']} -> {decision['reason']}"
    scores = cand["scores"]
    version = conclude(deps, state, cand, accepted, feedback, scores, decision)
    entry = attempt_entry(
        state,
        int(state.get("step", 0)),
        cand["id"],
        decision,
        feedback,
        list(cand.get("evaluated", [])),
        cand.get("notes", {}),
        scores,
    )
    update: dict[str, Any] = {
        "history": [entry],
        "decisions": [decision],
        "prompt_versions": [version],
        "pending_candidate": None,
        "pending_decision": None,
        "last_approved": accepted,
    }
    if accepted:
        update |= {
            "current_prompt": cand["text"],
            "best_prompt": cand["text"],
            "version_id": cand["id"],
        }
        demos = of_candidate(cand, state.get("demonstrations", {}))
        graded = await grade_version(deps, state, cand["id"], cand["text"], demos=demos)
        if graded:
            update |= graded | {"history": update["history"] + graded["history"]}
    return update
