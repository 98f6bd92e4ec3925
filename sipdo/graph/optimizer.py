"""The optimizer: one refinement attempt per run of the node, then the approval step.

``optimizer`` asks the strategy for candidates and evaluates each on the current
failures AND every task solved so far; a candidate that passes the
no-regression gate waits in ``pending_candidate`` for ``approve``, which (with
``approve_prompts``) pauses on ``interrupt()`` before the prompt changes. The
approval is its own node because an interrupted node re-runs from its start on
resume: nothing before ``interrupt()`` may call a model.
"""

from __future__ import annotations

import asyncio
import difflib
from typing import Any

from langgraph.types import interrupt

from sipdo.graph.events import emit
from sipdo.graph.lifecycle import version_id
from sipdo.graph.routing import passes_gate
from sipdo.graph.runtime import Deps, Tally
from sipdo.graph.state import SipdoState
from sipdo.plugins.optimizers.base import Candidate, ProposalContext


def textual_reward(
    fixed: list[str], broken: list[str], still: list[dict[str, Any]], n_fail: int, n_solved: int
) -> str:
    """The TRPrompt-style textual reward of one candidate."""
    text = f"fixed {len(fixed)}/{n_fail} failures; broke {len(broken)}/{n_solved} solved tasks"
    if broken:
        text += f" ({', '.join(broken[:5])})"
    notes = [f"{r['task']['id']}: {str(r['verdict'].get('feedback', ''))[:200]}" for r in still[:3]]
    return text + (". Still failing: " + " | ".join(notes) if notes else ".")


async def _evaluate(deps: Deps, tally: Tally, state: SipdoState, cand: Candidate) -> dict[str, Any]:
    failures, solved = state.get("failures", []), state.get("solved", [])
    vid = version_id(cand.text, cand.parent_id)
    record = {
        "version_id": vid,
        "text": cand.text,
        "parent_id": cand.parent_id,
        "rationale": cand.rationale,
        "notes": cand.notes,
        "iteration": state.get("iteration", 0),
    }
    if cand.text.strip() == state["current_prompt"].strip():
        feedback = "the candidate is identical to the current prompt"
        return {
            **record,
            "fixed": [],
            "broken": [],
            "scores": {},
            "feedback": feedback,
            "new_failures": failures,
            "fixed_tasks": [],
        }
    tasks = [f["task"] for f in failures] + solved
    results = await asyncio.gather(*(deps.solve_and_grade(tally, t, cand.text) for t in tasks))
    on_failures, on_solved = results[: len(failures)], results[len(failures) :]
    fixed = [r for r in on_failures if r["verdict"].get("passed")]
    still = [r for r in on_failures if not r["verdict"].get("passed")]
    broken = [r["task"]["id"] for r in on_solved if not r["verdict"].get("passed")]
    for r in results:
        deps.record(
            "record_attempt",
            task_id=r["task"]["id"],
            prompt_version_id=vid,
            role="learner",
            answer=r["answer"],
            passed=bool(r["verdict"].get("passed")),
            score=float(r["verdict"].get("score", 0.0)),
            feedback=str(r["verdict"].get("feedback", "")),
        )
    fixed_ids = [r["task"]["id"] for r in fixed]
    passes = sum(1 for r in results if r["verdict"].get("passed"))
    scores = {
        "fixed": float(len(fixed)),
        "broken": float(len(broken)),
        "pass_rate": passes / len(results) if results else 0.0,
    }
    return {
        **record,
        "fixed": fixed_ids,
        "broken": broken,
        "scores": scores,
        "feedback": textual_reward(fixed_ids, broken, still, len(failures), len(solved)),
        "new_failures": still,
        "fixed_tasks": [r["task"] for r in fixed],
    }


def _conclude(
    deps: Deps, state: SipdoState, cand: dict[str, Any], accepted: bool, reason: str
) -> dict[str, Any]:
    """Record one decided candidate; returns the attempt entry."""
    feedback = f"{cand['feedback']} -> {reason}"
    if cand.get("version_id"):
        deps.record(
            "record_prompt_version",
            version_id=cand["version_id"],
            text=cand["text"],
            parent_id=cand["parent_id"],
            accepted=accepted,
            scores=cand["scores"],
            feedback=feedback,
            iteration=int(state.get("iteration", 0)),
        )
    emit(
        "prompt_candidate",
        version_id=cand.get("version_id") or "",
        accepted=accepted,
        fixed=len(cand["fixed"]),
        broken=len(cand["broken"]),
        reason=reason,
    )
    return {
        "version_id": cand.get("version_id"),
        "prompt": cand.get("text"),
        "accepted": accepted,
        "fixed": cand["fixed"],
        "broken": cand["broken"],
        "scores": cand["scores"],
        "feedback": feedback,
        "notes": cand.get("notes", {}),
        "reason": reason,
    }


def _history(state: SipdoState, attempt: dict[str, Any]) -> dict[str, Any]:
    keep = ("version_id", "accepted", "fixed", "broken", "scores", "feedback", "reason")
    return {
        "kind": "prompt_attempt",
        "iteration": state.get("iteration", 0),
        **{k: attempt[k] for k in keep},
    }


async def optimizer(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """One attempt: propose, evaluate every candidate in parallel, apply the gate."""
    tally = Tally()

    async def llm(messages: Any, schema: Any) -> Any:
        return await deps.structured(tally, "optimizer", messages, schema)

    ctx = ProposalContext(
        prompt=state["current_prompt"],
        version_id=state["version_id"],
        failures=state.get("failures", []),
        solved=state.get("solved", []),
        attempts=state.get("attempts", []),
        pool=state.get("pool", []),
        describe=deps.domain.describe_failure,
        llm=llm,
    )
    proposal = await deps.strategy.propose(ctx)
    evaluated = await asyncio.gather(
        *(_evaluate(deps, tally, state, c) for c in proposal.candidates)
    )
    passing = [c for c in evaluated if passes_gate(c["fixed"], c["broken"])]
    best = max(
        passing, key=lambda c: (len(c["fixed"]), c["scores"].get("pass_rate", 0.0)), default=None
    )
    attempts = list(state.get("attempts", []))
    history = list(state.get("history", []))
    versions = list(state.get("prompt_versions", []))
    pool = state.get("pool", [])
    if not proposal.candidates:
        empty = {
            "fixed": [],
            "broken": [],
            "scores": {},
            "feedback": "no candidate",
            "notes": {**proposal.notes, **({"raw_reply": proposal.raw} if proposal.raw else {})},
        }
        attempts.append(
            _conclude(deps, state, empty, False, proposal.error or "no candidate proposed")
        )
        history.append(_history(state, attempts[-1]))
    for cand in evaluated:
        if cand is best:
            continue
        reason = (
            "rejected by the no-regression gate"
            if cand["broken"] or not cand["fixed"]
            else "a better candidate passed"
        )
        attempts.append(_conclude(deps, state, cand, False, reason))
        history.append(_history(state, attempts[-1]))
        pool = deps.strategy.update_pool(pool, {**cand, "accepted": False})
        versions.append({**_version(cand), "accepted": False, "feedback": attempts[-1]["feedback"]})
    return {
        "attempts": attempts,
        "history": history,
        "pool": pool,
        "prompt_versions": versions,
        "pending_candidate": best,
        "last_approved": False,
        "budget_used": deps.fold(state, tally, "optimizer"),
    }


def _version(cand: dict[str, Any]) -> dict[str, Any]:
    keep = ("version_id", "text", "parent_id", "scores", "iteration")
    return {k: cand.get(k) for k in keep}


def _approved(answer: Any) -> bool:
    if isinstance(answer, dict):
        answer = answer.get("approved", answer.get("approve"))
    if isinstance(answer, str):
        return answer.strip().lower() in ("y", "yes", "true", "approve", "approved", "ok")
    return answer is True


async def approve(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """Apply the gate-passing candidate, after a human says yes when ``approve_prompts``."""
    cand = state.get("pending_candidate")
    if cand is None:  # routing only comes here with a candidate
        raise RuntimeError("approve ran without a pending candidate")
    reason = "passed the no-regression gate"
    accepted = True
    if deps.approve_prompts:
        diff = "\n".join(
            difflib.unified_diff(
                state["current_prompt"].splitlines(),
                cand["text"].splitlines(),
                "current",
                "candidate",
                lineterm="",
            )
        )
        answer = interrupt(
            {
                "kind": "approve_prompt",
                "version_id": cand["version_id"],
                "parent_id": cand["parent_id"],
                "current": state["current_prompt"],
                "candidate": cand["text"],
                "diff": diff,
                "fixed": cand["fixed"],
                "broken": cand["broken"],
                "feedback": cand["feedback"],
            }
        )
        accepted = _approved(answer)
        reason = "approved by the reviewer" if accepted else "rejected by the reviewer"
    attempt = _conclude(deps, state, cand, accepted, reason)
    version = {**_version(cand), "accepted": accepted, "feedback": attempt["feedback"]}
    update: dict[str, Any] = {
        "attempts": [*state.get("attempts", []), attempt],
        "history": [*state.get("history", []), _history(state, attempt)],
        "prompt_versions": [*state.get("prompt_versions", []), version],
        "pool": deps.strategy.update_pool(state.get("pool", []), {**cand, "accepted": accepted}),
        "pending_candidate": None,
        "last_approved": accepted,
    }
    if accepted:
        known = {t["id"] for t in state.get("solved", [])}
        update |= {
            "current_prompt": cand["text"],
            "best_prompt": cand["text"],
            "version_id": cand["version_id"],
            "solved": [
                *state.get("solved", []),
                *(t for t in cand["fixed_tasks"] if t["id"] not in known),
            ],
            "failures": cand["new_failures"],
        }
    return update
