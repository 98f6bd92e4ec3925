"""The two ends of a run: ``setup`` (validate input, version 0) and ``finish``."""

from __future__ import annotations

from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.graph.budget import empty_usage
from sipdo.graph.events import emit
from sipdo.graph.holdout import grade_version
from sipdo.graph.promote import commit_flow
from sipdo.graph.routing import stop_reason
from sipdo.graph.runtime import Deps, run_id
from sipdo.graph.state import CandidateState, SipdoState, fresh
from sipdo.plugins.optimizers.candidates import INSTRUCTIONS, candidate_id


def version_id(text: str, parent: str | None) -> str:
    """Content-derived prompt version id (same text from the same parent, same id)."""
    return candidate_id({INSTRUCTIONS: text}, [parent] if parent else [])


async def setup(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """Validate the input and start a run; ``ConfigurationError`` for a missing prompt or
    a bad seed task.

    Every channel is reset (``fresh`` bypasses the reducers), so invoking a thread
    again starts a new run rather than appending to the last one; ``seed_tasks`` is
    consumed (set to None) so a later invocation without seeds gets the domain's.
    """
    prompt = state.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigurationError("input state needs a non-empty 'prompt' string")
    raw_seeds = state.get("seed_tasks")
    if raw_seeds is None:
        seeds = deps.domain.seed_tasks()
    elif isinstance(raw_seeds, list):
        seeds = []
        for i, raw in enumerate(raw_seeds):
            try:
                seeds.append(deps.domain.validate_task(raw))
            except ConfigurationError as exc:
                raise ConfigurationError(f"seed task {i}: {exc}") from exc
    else:
        raise ConfigurationError(f"'seed_tasks' must be a list, got {type(raw_seeds).__name__}")
    vid = version_id(prompt, None)
    if deps.run_store is not None:
        run_id()  # fail early when no run id is configured
        deps.record(
            "create_run",
            config={
                "domain": deps.domain.name,
                "strategy": deps.strategy.name,
                "budget": deps.budget.limits(),
                "gate": deps.gate.name,
                "models": {
                    role: str(m.name or type(m).__name__) for role, m in deps.models.items()
                },
            },
            initial_prompt=prompt,
        )
        deps.record(
            "record_prompt_version",
            version_id=vid,
            text=prompt,
            parent_id=None,
            accepted=True,
            scores={},
            feedback="initial prompt",
            iteration=0,
        )
        for task in seeds:
            deps.record(
                "record_task",
                task=task,
                status="seed",
                reason="seed task",
                verdict=None,
                difficulty=int(task.get("difficulty", 1)),
                weakness=str(task.get("weakness", "")),
            )
    version: dict[str, Any] = {
        "version_id": vid,
        "text": prompt,
        "parent_id": None,
        "parent_ids": [],
        "operator": "initial",
        "accepted": True,
        "scores": {},
        "feedback": "initial prompt",
        "iteration": 0,
    }
    initial: CandidateState = {
        "id": vid,
        "text": prompt,
        "components": {INSTRUCTIONS: prompt},
        "parent_ids": [],
        "operator": "initial",
        "iteration": 0,
        "step": 0,
    }
    update: dict[str, Any] = {
        "seed_tasks": None,
        "seeds": seeds,
        "phase": "seed",
        "current_prompt": prompt,
        "best_prompt": prompt,
        "version_id": vid,
        "pending": seeds,
        "new_tasks": [],
        "checker_answers": {},
        "verified_tasks": {},
        "seen_keys": {deps.domain.dedup_key(t): t["id"] for t in seeds},
        "step": 0,
        "flow": None,
        "pending_candidate": None,
        "pending_decision": None,
        "last_approved": False,
        "strategy_state": {},
        "holdout": [],
        "stop_requested": None,
        "accepted_tasks": fresh([]),
        "rejected_tasks": fresh([]),
        "history": fresh([]),
        "prompt_versions": fresh([version]),
        "budget_used": fresh(empty_usage()),
        "score_table": fresh({}),
        "candidates": fresh({vid: initial}),
        "demonstrations": fresh({}),
        "decisions": fresh([]),
        "iteration": 0,
        "difficulty": max((int(t.get("difficulty", 1)) for t in seeds), default=1),
        "stop_reason": "",
    }
    graded = await grade_version(deps, update, vid, prompt)
    if graded:
        update |= {"holdout": graded["holdout"], "history": fresh(graded["history"])}
    return update


async def finish(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """Record why the run stopped and emit ``run_end``; a step cut short by the budget
    keeps what it paid for (its evaluations and candidates join the state)."""
    reason = stop_reason(state, deps.budget, deps.domain.max_difficulty) or "iterations"
    best = state.get("current_prompt") or state.get("prompt", "")
    deps.record("finish_run", status="finished", best_prompt=best, stop_reason=reason)
    emit("run_end", stop_reason=reason, best_prompt=best)
    update: dict[str, Any] = {"stop_reason": reason, "best_prompt": best}
    if state.get("flow"):
        update |= commit_flow(state)
    return update
