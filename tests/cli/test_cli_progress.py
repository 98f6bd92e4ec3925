"""The live progress view: events folded into counts, rendered, described."""

from __future__ import annotations

from rich.console import Console

from sipdo.cli.progress import ProgressView, budget_line, describe

EVENTS = [
    {"event": "iteration_start", "iteration": 1, "difficulty": 2},
    {
        "event": "task_verdict",
        "task_id": "t1",
        "accepted": True,
        "reason": "verified",
        "difficulty": 2,
        "weakness": "[edge] cases",
    },
    {
        "event": "task_verdict",
        "task_id": "t2",
        "accepted": False,
        "reason": "checker disagrees",
        "difficulty": 2,
        "weakness": "",
    },
    {"event": "learner_result", "task_id": "t1", "passed": False, "score": 0.0},
    {"event": "learner_result", "task_id": "s1", "passed": True, "score": 1.0},
    {
        "event": "prompt_candidate",
        "version_id": "pv-1",
        "accepted": True,
        "fixed": 1,
        "broken": ["x", "y"],
        "reason": "gate",
    },
    {
        "event": "budget",
        "used": {
            "model_calls": {"learner": 3, "generator": 2},
            "input_tokens": {"learner": 100},
            "output_tokens": {"learner": 20, "generator": 30},
            "sandbox_seconds": 4.25,
        },
        "limits": {"model_calls": 50, "tokens": None, "sandbox_seconds": 60.0},
    },
    {"event": "run_end", "stop_reason": "iterations", "best_prompt": "p"},
]


def test_events_fold_into_the_view() -> None:
    view = ProgressView(run_id="r1", iterations=3)
    for event in EVENTS:
        view.apply(event)
    assert (view.iteration, view.difficulty) == (1, 2)
    assert (view.accepted, view.rejected) == (1, 1)
    assert (view.learner_passed, view.learner_total) == (1, 2)
    assert view.best_score == 0.5
    assert (view.prompts_accepted, view.prompts_rejected) == (1, 0)
    assert view.last_prompt_note == "pv-1 accepted: fixed 1, broke 2 (gate)"
    assert view.budget == "model calls 5/50 · tokens 150/∞ · sandbox 4.2s/60"
    assert view.stop_reason == "iterations"


def test_a_new_iteration_resets_the_learner_tally_but_keeps_the_best() -> None:
    view = ProgressView(run_id="r")
    view.apply({"event": "learner_result", "task_id": "a", "passed": True, "score": 1.0})
    view.apply({"event": "iteration_start", "iteration": 2, "difficulty": 3})
    view.apply({"event": "learner_result", "task_id": "b", "passed": False, "score": 0.0})
    assert (view.learner_passed, view.learner_total, view.best_score) == (0, 1, 1.0)


def test_unknown_events_are_counted_not_fatal() -> None:
    view = ProgressView(run_id="r")
    view.apply({"event": "something_new", "x": 1})
    view.apply({"no_event_key": True})
    assert view.events == 2
    assert (view.accepted, view.rejected, view.iteration) == (0, 0, 0)


def test_render_shows_counts_reasons_and_budget_literally() -> None:
    view = ProgressView(run_id="run-[x]", iterations=3)
    for event in EVENTS:
        view.apply(event)
    console = Console(record=True, width=160, color_system=None)
    console.print(view.render())
    text = console.export_text()
    for expected in (
        "run-[x]",
        "1/3",
        "difficulty 2",
        "1 accepted",
        "1 rejected",
        "best 50%",
        "checker disagrees",
        "[edge] cases",
        "model calls 5/50",
        "iterations",
    ):
        assert expected in text, expected


def test_describe_gives_one_line_per_event() -> None:
    lines = [describe(e) for e in EVENTS]
    assert lines[0] == "iteration 1 (difficulty 2)"
    assert lines[1] == "task t1 accepted [[edge] cases]: verified"
    assert lines[2] == "task t2 rejected: checker disagrees"
    assert lines[3] == "learner failed t1 (score 0.00)"
    assert lines[5] == "prompt pv-1 accepted: fixed 1, broke 2 gate"
    assert lines[6].startswith("budget: model calls 5/50")
    assert lines[7] == "run ended: iterations"
    assert all("\n" not in line for line in lines)


def test_budget_line_sums_per_role_caps() -> None:
    line = budget_line(
        {"model_calls": {"a": 1}, "sandbox_seconds": 0.0},
        {"model_calls": {"learner": 10, "checker": 5}, "tokens": 1000},
    )
    assert line == "model calls 1/15 · tokens 0/1000 · sandbox 0.0s/∞"


def test_model_calls_move_the_display() -> None:
    view = ProgressView(run_id="r")
    start = {"event": "model_call", "role": "generator", "phase": "start"}
    end = {
        "event": "model_call",
        "role": "generator",
        "phase": "end",
        "calls": 2,
        "output_tokens": 226,
        "seconds": 51.16,
        "ok": False,
    }
    view.apply(start)
    assert view.model_calls == 0
    assert view.model_note == "generator: working..."
    view.apply(end)
    assert view.model_calls == 1
    assert describe(end) == (
        "model generator: 226 tokens out in 51.2s, 4.4 tok/s (2 call(s), unusable)"
    )
    console = Console(width=120, record=True)
    console.print(view.render())
    assert "1 calls — generator: 226 tokens out in 51.2s" in console.export_text()


def test_time_queued_behind_other_calls_is_reported_apart_from_generation() -> None:
    from langchain_core.messages import AIMessage

    from sipdo.structured import CallStats

    reply = AIMessage(
        content="x",
        usage_metadata={"input_tokens": 9, "output_tokens": 165, "total_tokens": 174},
        response_metadata={"queue_wait_s": 54.6},
    )
    stats = CallStats.of(reply, 66.9) + CallStats.of(AIMessage(content="y"), 1.0)
    assert (stats.calls, stats.latency_s, stats.wait_s) == (2, 67.9, 54.6)
    end = {
        "event": "model_call",
        "role": "learner",
        "phase": "end",
        "calls": 1,
        "output_tokens": 165,
        "seconds": 66.9,
        "wait_seconds": 54.6,
        "ok": True,
    }
    assert describe(end) == (
        "model learner: 165 tokens out in 12.3s, 13.4 tok/s, 54.6s waiting for the model"
        " (1 call(s))"
    )


def test_a_step_without_a_candidate_is_shown_with_its_reason() -> None:
    event = {"event": "no_candidate", "reason": "refinement unusable: no <prompt> block"}
    view = ProgressView(run_id="r1", iterations=1)
    view.apply(event)
    assert view.last_prompt_note == "no candidate: refinement unusable: no <prompt> block"
    assert describe(event) == (
        "optimizer step made no candidate: refinement unusable: no <prompt> block"
    )
