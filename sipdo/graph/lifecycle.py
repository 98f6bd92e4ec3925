"""The two ends of a run: ``setup`` (validate input, version 0) and ``finish``."""

from __future__ import annotations

from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.graph.budget import empty_usage
from sipdo.graph.events import emit
from sipdo.graph.routing import stop_reason
from sipdo.graph.runtime import Deps, run_id
from sipdo.graph.state import SipdoState
from sipdo.verifiers.types import content_id


def version_id(text: str, parent: str | None) -> str:
    """Content-derived prompt version id (same text from the same parent, same id)."""
    return content_id(parent or "", text, prefix="pv")


async def setup(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """Validate the input; ``ConfigurationError`` for a missing prompt or a bad seed task."""
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
        "accepted": True,
        "scores": {},
        "feedback": "initial prompt",
        "iteration": 0,
    }
    return {
        "seed_tasks": seeds,
        "phase": "seed",
        "current_prompt": prompt,
        "best_prompt": prompt,
        "version_id": vid,
        "pending": seeds,
        "new_tasks": [],
        "checker_answers": {},
        "solved": [],
        "failures": [],
        "seen_keys": {deps.domain.dedup_key(t): t["id"] for t in seeds},
        "attempts": [],
        "pending_candidate": None,
        "pool": [],
        "accepted_tasks": [],
        "rejected_tasks": [],
        "history": [],
        "prompt_versions": [version],
        "budget_used": empty_usage(),
        "iteration": 0,
        "difficulty": max((int(t.get("difficulty", 1)) for t in seeds), default=1),
        "stop_reason": "",
    }


async def finish(state: SipdoState, deps: Deps) -> dict[str, Any]:
    """Record why the run stopped and emit ``run_end``."""
    reason = stop_reason(state, deps.budget, deps.domain.max_difficulty) or "iterations"
    best = state.get("current_prompt") or state.get("prompt", "")
    deps.record("finish_run", status="finished", best_prompt=best, stop_reason=reason)
    emit("run_end", stop_reason=reason, best_prompt=best)
    return {"stop_reason": reason, "best_prompt": best}
