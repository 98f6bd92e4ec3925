"""What a run report shows, read from the run store (and the run's checkpoint when given).

``collect`` turns the store's records into plain, frozen views; the figures and the
page are drawn from these alone, so they never reach back into the database. Text
in these views is raw (model-written, unescaped): escaping is the renderer's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.report.checkpoint import CheckpointValues, read_checkpoint
from sipdo.report.heldout import HeldOutPoint, heldout_points
from sipdo.store import BaseRunStore, PromptVersionRecord, RunRecord, TaskRecord


@dataclass(frozen=True)
class VersionView:
    """One prompt version (a candidate) with its lineage and the promotion decision."""

    version_id: str
    parent_ids: tuple[str, ...]
    operator: str
    iteration: int
    promoted: bool
    reason: str  # why (not) promoted: the policy's reason, else the recorded feedback
    policy: str
    text: str
    diff: str
    rationale: str
    flags: tuple[str, ...]
    stats: Mapping[str, float]
    recorded_scores: Mapping[str, float]
    passed: int  # training tasks this version's learner attempts passed (score table)
    graded: int  # training tasks it was graded on
    rating: tuple[float, float] | None = None  # E-SPL's (mu, sigma) when put forward
    front: tuple[str, ...] = ()  # GEPA: the tasks on whose Pareto front it stands


@dataclass(frozen=True)
class TaskView:
    """One task: seed, accepted or rejected, with the verifier's reason and checks."""

    task_id: str
    status: str
    difficulty: int
    iteration: int | None  # the iteration that generated it (seeds: 0)
    weakness: str
    reason: str
    statement: str
    checks: tuple[tuple[str, bool, str], ...]  # (check, passed, detail) of the last verdict


@dataclass(frozen=True)
class CostRow:
    """Model usage of one role (every model it used summed)."""

    role: str
    models: str
    calls: int
    input_tokens: int
    output_tokens: int
    latency_s: float


@dataclass(frozen=True)
class ReportData:
    """Everything the report draws."""

    run: RunRecord
    versions: tuple[VersionView, ...]
    tasks: tuple[TaskView, ...]
    score_table: Mapping[str, Mapping[str, Mapping[str, Any]]]  # version -> task -> cell
    costs: tuple[CostRow, ...]
    sandbox_seconds: float | None  # None: not recorded anywhere this report can read
    heldout: tuple[HeldOutPoint, ...]
    requested_difficulty: Mapping[int, int]  # iteration -> level asked of the generator
    ratings: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # (mu, sigma)
    front: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # task -> candidates
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def best_version(self) -> VersionView | None:
        """The last promoted version (the prompt the run ended with)."""
        promoted = [v for v in self.versions if v.promoted]
        return promoted[-1] if promoted else None


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a dict (stored JSON may hold anything), else an empty one."""
    return value if isinstance(value, dict) else {}


def collect(store: BaseRunStore, run_id: str, *, checkpoint: Path | None = None) -> ReportData:
    """Read run ``run_id`` for a report.

    ``checkpoint`` is the run's LangGraph SQLite checkpoint file (``sipdo run`` keeps
    it next to a SQLite store); it adds what the store does not keep (sandbox time,
    the difficulty asked per iteration, held-out results of the graph) and is read
    only. Raises ``RunNotFoundError`` for an unknown run and ``ConfigurationError``
    for a run that has recorded nothing to report yet.
    """
    run = store.get_run(run_id)
    lineage = store.prompt_lineage(run_id)
    task_records = store.tasks(run_id)
    if not lineage and not task_records:
        raise ConfigurationError(
            f"run {run_id!r} has recorded nothing yet (no prompt version, no task): "
            "nothing to report"
        )
    table = _score_table(store, run_id)
    values = read_checkpoint(checkpoint, run_id) if checkpoint is not None else None
    iterations = {v.version_id: v.iteration for v in lineage}
    return ReportData(
        run=run,
        versions=tuple(_version(v, table.get(v.version_id, {})) for v in lineage),
        tasks=tuple(_task(t) for t in task_records),
        score_table=table,
        costs=_costs(store, run_id),
        sandbox_seconds=_sandbox_seconds(values),
        heldout=tuple(heldout_points(store, run_id, values, iterations)),
        requested_difficulty=_requested_difficulty(values),
        ratings=_last_note(values, ("ratings",), _ratings),
        front=_last_note(values, ("fronts", "front"), _front),
    )


def _score_table(store: BaseRunStore, run_id: str) -> dict[str, dict[str, dict[str, Any]]]:
    reader = getattr(store, "score_table", None)
    if callable(reader):
        return dict(reader(run_id))
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for a in store.attempts(run_id):
        if a.role == "learner":
            table.setdefault(a.prompt_version_id, {})[a.task_id] = {
                "passed": a.passed,
                "score": a.score,
            }
    return table


def _version(p: PromptVersionRecord, row: Mapping[str, Mapping[str, Any]]) -> VersionView:
    decision = as_dict(p.meta.get("decision"))
    stats = as_dict(decision.get("stats"))
    initial = not p.parent_ids
    reason = str(decision.get("reason") or ("initial prompt" if initial else p.feedback))
    return VersionView(
        version_id=p.version_id,
        parent_ids=p.parent_ids,
        operator=p.operator,
        iteration=p.iteration,
        promoted=p.accepted,
        reason=reason,
        policy=str(decision.get("policy") or ""),
        text=p.text,
        diff=p.diff,
        rationale=str(p.meta.get("rationale") or ""),
        flags=tuple(str(f) for f in p.meta.get("flags") or ()),
        stats={str(k): float(v) for k, v in stats.items() if isinstance(v, int | float)},
        recorded_scores=dict(p.scores),
        passed=sum(1 for cell in row.values() if cell.get("passed")),
        graded=len(row),
        rating=_rating(p.meta.get("rating")),
        front=tuple(str(t) for t in p.meta.get("front") or () if isinstance(t, str)),
    )


def _rating(value: Any) -> tuple[float, float] | None:
    """``{"mu", "sigma"}`` (or a pair) as ``(mu, sigma)``."""
    if isinstance(value, dict):
        value = (value.get("mu"), value.get("sigma"))
    pair = isinstance(value, list | tuple) and len(value) == 2
    if pair and all(isinstance(x, int | float) for x in value):
        return float(value[0]), float(value[1])
    return None


def _task(t: TaskRecord) -> TaskView:
    provenance = as_dict(t.task.get("provenance"))
    iteration = provenance.get("iteration", t.task.get("iteration"))
    if t.status == "seed":
        iteration = 0
    last = as_dict(t.verdicts[-1].verdict if t.verdicts else None)
    checks = tuple(
        (str(c.get("name", "?")), bool(c.get("passed")), str(c.get("detail", "")))
        for c in last.get("checks") or ()
        if isinstance(c, dict)
    )
    # code tasks state a prompt; qa and plan tasks a question
    statement = t.task.get("prompt") or t.task.get("question") or t.task.get("raw_reply") or ""
    return TaskView(
        task_id=t.task_id,
        status=t.status,
        difficulty=t.difficulty,
        iteration=iteration if isinstance(iteration, int) else None,
        weakness=t.weakness,
        reason=t.reason,
        statement=str(statement),
        checks=checks,
    )


def _costs(store: BaseRunStore, run_id: str) -> tuple[CostRow, ...]:
    per_role: dict[str, list[Any]] = {}
    for u in store.usage(run_id):
        row = per_role.setdefault(u.role, [[], 0, 0, 0, 0.0])
        row[0].append(u.model)
        row[1] += u.calls
        row[2] += u.input_tokens
        row[3] += u.output_tokens
        row[4] += u.latency_s
    return tuple(
        CostRow(role, ", ".join(models), calls, tin, tout, latency)
        for role, (models, calls, tin, tout, latency) in per_role.items()
    )


def _sandbox_seconds(values: CheckpointValues | None) -> float | None:
    used = (values or {}).get("budget_used")
    if isinstance(used, Mapping) and isinstance(used.get("sandbox_seconds"), int | float):
        return float(used["sandbox_seconds"])
    return None


def _requested_difficulty(values: CheckpointValues | None) -> dict[int, int]:
    out: dict[int, int] = {}
    history: Sequence[Any] = (values or {}).get("history") or ()
    for entry in history:
        if isinstance(entry, Mapping) and entry.get("kind") == "generation":
            iteration, level = entry.get("iteration"), entry.get("difficulty")
            if isinstance(iteration, int) and isinstance(level, int):
                out[iteration] = level
    return out


def _last_note(values: CheckpointValues | None, keys: tuple[str, ...], parse: Any) -> Any:
    """The first of ``keys`` that parses to something in the notes of the last optimizer
    step that left one (E-SPL's ratings of the whole population, GEPA's Pareto front
    per task: the strategies keep these in the graph's history only)."""
    history: Sequence[Any] = (values or {}).get("history") or ()
    for entry in reversed(history):
        if not isinstance(entry, Mapping) or entry.get("kind") != "prompt_attempt":
            continue
        notes = as_dict(entry.get("notes"))
        for key in keys:
            found = parse(notes.get(key))
            if found:
                return found
    return parse(None)


def _ratings(value: Any) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for cid, pair in as_dict(value).items():
        rating = _rating(pair)
        if rating is not None:
            out[str(cid)] = rating
    return out


def _front(value: Any) -> dict[str, tuple[str, ...]]:
    return {
        str(task): tuple(str(c) for c in cands)
        for task, cands in as_dict(value).items()
        if isinstance(cands, list | tuple)
    }
