"""Progress events on LangGraph's ``custom`` stream (what the CLI's live display shows).

Every event is a dict with key ``"event"``, one of:
``iteration_start`` (iteration, difficulty), ``task_verdict`` (task_id, accepted,
reason, difficulty, weakness), ``learner_result`` (task_id, passed, score),
``prompt_candidate`` (version_id, accepted, fixed, broken, reason),
``no_candidate`` (reason: an optimizer step that ended without a candidate),
``budget`` (used, limits), ``run_end`` (stop_reason, best_prompt),
``model_call`` (role, phase ``"start"`` or ``"end"``; at the end also calls,
output_tokens, seconds and ok: one per structured or text request, retries
included, so a display moves during long local generations),
``holdout_result`` (iteration, version_id, eval_id, passed, total, pass_at_1,
base_pass_at_1, problems: a version graded on the held-out set).
"""

from __future__ import annotations

from typing import Any

from langgraph.config import get_stream_writer

EVENTS = frozenset(
    {
        "iteration_start",
        "task_verdict",
        "learner_result",
        "prompt_candidate",
        "no_candidate",
        "budget",
        "run_end",
        "model_call",
        "holdout_result",
    }
)


def emit(event: str, **data: Any) -> None:
    """Write one event; a no-op outside a running graph."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    try:
        writer = get_stream_writer()
    except RuntimeError:
        return
    writer({"event": event, **data})
