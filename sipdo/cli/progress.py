"""The live view of ``sipdo run``: folds the graph's custom stream events into a display.

``ProgressView.apply(event)`` is pure bookkeeping (tested without a terminal);
``render()`` draws it with rich for a live display, ``describe(event)`` gives
one plain line per event for logs and pipes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text


def _num(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return str(int(value)) if isinstance(value, float) else str(value)


def _count(value: Any) -> int:
    """A count given either as a number or as the list of what was counted."""
    if isinstance(value, list | tuple | set):
        return len(value)
    return int(value or 0)


def _total(value: Any) -> float:
    if isinstance(value, Mapping):
        return float(sum(float(v) for v in value.values()))
    return float(value or 0)


def budget_line(used: Mapping[str, Any], limits: Mapping[str, Any]) -> str:
    """``model calls 12/50 · tokens 3400/∞ · sandbox 5.2s/∞`` from a ``budget`` event."""
    calls = _total(used.get("model_calls", {}))
    tokens = _total(used.get("input_tokens", {})) + _total(used.get("output_tokens", {}))
    seconds = _total(used.get("sandbox_seconds", 0.0))

    def cap(name: str) -> str:
        value = limits.get(name)
        if value is None:
            return "∞"
        return _num(_total(value) if isinstance(value, Mapping) else value)

    return (
        f"model calls {int(calls)}/{cap('model_calls')} · tokens {int(tokens)}/{cap('tokens')}"
        f" · sandbox {seconds:.1f}s/{cap('sandbox_seconds')}"
    )


@dataclass
class ProgressView:
    """What the run has shown so far."""

    run_id: str
    iterations: int | None = None
    iteration: int = 0
    difficulty: int = 1
    accepted: int = 0
    rejected: int = 0
    verdicts: deque[tuple[str, bool, str, int, str]] = field(
        default_factory=lambda: deque(maxlen=8)
    )
    learner_passed: int = 0
    learner_total: int = 0
    best_score: float | None = None
    prompts_accepted: int = 0
    prompts_rejected: int = 0
    last_prompt_note: str = ""
    budget: str = ""
    stop_reason: str | None = None
    events: int = 0
    model_calls: int = 0
    model_note: str = ""

    def apply(self, event: Mapping[str, Any]) -> None:
        """Fold one event in; unknown events are counted and otherwise ignored."""
        self.events += 1
        kind = event.get("event")
        if kind == "iteration_start":
            self.iteration = int(event.get("iteration", self.iteration))
            self.difficulty = int(event.get("difficulty", self.difficulty))
            self.learner_passed = self.learner_total = 0
        elif kind == "task_verdict":
            ok = bool(event.get("accepted"))
            self.accepted += ok
            self.rejected += not ok
            self.verdicts.append(
                (
                    str(event.get("task_id", "?")),
                    ok,
                    str(event.get("reason", "")),
                    int(event.get("difficulty", 0) or 0),
                    str(event.get("weakness", "")),
                )
            )
        elif kind == "learner_result":
            self.learner_total += 1
            self.learner_passed += bool(event.get("passed"))
            score = self.learner_passed / self.learner_total
            self.best_score = score if self.best_score is None else max(self.best_score, score)
        elif kind == "prompt_candidate":
            ok = bool(event.get("accepted"))
            self.prompts_accepted += ok
            self.prompts_rejected += not ok
            fixed, broken = _count(event.get("fixed")), _count(event.get("broken"))
            verdict = "accepted" if ok else "rejected"
            self.last_prompt_note = (
                f"{event.get('version_id', '?')} {verdict}: fixed {fixed}, broke {broken}"
                + (f" ({event.get('reason')})" if event.get("reason") else "")
            )
        elif kind == "no_candidate":
            self.last_prompt_note = f"no candidate: {event.get('reason') or '?'}"
        elif kind == "model_call":
            self.model_note = describe(event).removeprefix("model ")
            self.model_calls += event.get("phase") == "end"
        elif kind == "budget":
            self.budget = budget_line(event.get("used") or {}, event.get("limits") or {})
        elif kind == "run_end":
            self.stop_reason = str(event.get("stop_reason", ""))

    def render(self) -> RenderableType:
        """The live display: a summary grid and the latest task verdicts."""
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        of = f"/{self.iterations}" if self.iterations else ""
        grid.add_row("run", Text(self.run_id))
        grid.add_row("iteration", f"{self.iteration}{of}   difficulty {self.difficulty}")
        grid.add_row(
            "tasks",
            Text.assemble(
                (f"{self.accepted} accepted", "green"), "  ", (f"{self.rejected} rejected", "red")
            ),
        )
        best = "-" if self.best_score is None else f"{self.best_score:.0%}"
        grid.add_row(
            "learner", f"{self.learner_passed}/{self.learner_total} passed now, best {best}"
        )
        grid.add_row(
            "prompts",
            Text(
                f"{self.prompts_accepted} accepted, {self.prompts_rejected} rejected"
                + (f" — {self.last_prompt_note}" if self.last_prompt_note else "")
            ),
        )
        grid.add_row("model", Text(f"{self.model_calls} calls — {self.model_note or '-'}"))
        grid.add_row("budget", Text(self.budget or "-"))
        if self.stop_reason:
            grid.add_row("stopped", Text(self.stop_reason))
        table = Table(title="latest task verdicts", expand=False, show_lines=False)
        for name in ("task", "verdict", "diff.", "weakness", "reason"):
            table.add_column(name, overflow="fold")
        for task_id, ok, reason, difficulty, weakness in self.verdicts:
            table.add_row(
                Text(task_id),
                Text("accepted", "green") if ok else Text("rejected", "red"),
                str(difficulty),
                Text(weakness[:40]),
                Text(reason[:80]),
            )
        return Group(grid, table) if self.verdicts else grid


def describe(event: Mapping[str, Any]) -> str:
    """One plain line for an event (the non-terminal progress output)."""
    kind = event.get("event")
    if kind == "iteration_start":
        return f"iteration {event.get('iteration')} (difficulty {event.get('difficulty')})"
    if kind == "task_verdict":
        verdict = "accepted" if event.get("accepted") else "rejected"
        weakness = f" [{event.get('weakness')}]" if event.get("weakness") else ""
        return f"task {event.get('task_id')} {verdict}{weakness}: {event.get('reason', '')}"
    if kind == "learner_result":
        verdict = "passed" if event.get("passed") else "failed"
        return f"learner {verdict} {event.get('task_id')} (score {event.get('score', 0):.2f})"
    if kind == "prompt_candidate":
        verdict = "accepted" if event.get("accepted") else "rejected"
        return (
            f"prompt {event.get('version_id')} {verdict}: fixed {_count(event.get('fixed'))},"
            f" broke {_count(event.get('broken'))} {event.get('reason') or ''}".rstrip()
        )
    if kind == "no_candidate":
        return f"optimizer step made no candidate: {event.get('reason') or '?'}"
    if kind == "model_call":
        role = event.get("role", "?")
        if event.get("phase") == "start":
            return f"model {role}: working..."
        failed = "" if event.get("ok", True) else ", unusable"
        tokens = int(event.get("output_tokens", 0))
        waited = float(event.get("wait_seconds", 0.0))
        generating = max(0.0, float(event.get("seconds", 0.0)) - waited)
        rate = f", {tokens / generating:.1f} tok/s" if tokens and generating > 0 else ""
        queued = f", {waited:.1f}s waiting for the model" if waited >= 0.05 else ""
        return (
            f"model {role}: {tokens} tokens out in {generating:.1f}s{rate}{queued}"
            f" ({event.get('calls', 1)} call(s){failed})"
        )
    if kind == "budget":
        return "budget: " + budget_line(event.get("used") or {}, event.get("limits") or {})
    if kind == "run_end":
        return f"run ended: {event.get('stop_reason')}"
    if kind == "holdout_result":
        return (
            f"held-out {event.get('version_id')}: {event.get('passed')}/{event.get('total')} "
            f"pass@1 {float(event.get('pass_at_1', 0.0)):.3f} "
            f"(own tests only {float(event.get('base_pass_at_1', 0.0)):.3f})"
        )
    return f"event {kind}"
