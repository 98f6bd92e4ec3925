"""The state schema of the SIPDO graph, in one place.

Everything is JSON (str, int, float, bool, list, dict), so any LangGraph
checkpointer persists it, and typed, so a reader sees what flows between the
nodes. Append-only lists, the score table and the budget usage have reducers:
a node returns only what it adds (``{"history": [entry]}``), never a rebuilt
copy. ``setup`` starts a run with ``Overwrite`` so a re-invoked thread begins
afresh instead of appending to the last run.

The TypedDicts come from ``typing_extensions`` because LangGraph Server reads
the input/output schemas of the compiled graph through pydantic, which on
Python 3.11 only accepts ``typing_extensions.TypedDict``.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NotRequired, Required

from langgraph.types import Overwrite
from typing_extensions import TypedDict

from sipdo.answers import Answer

Task = dict[str, Any]  # a domain task (JSON); "id", "difficulty", "weakness" always set


class VerdictState(TypedDict, total=False):
    """A verifier's verdict on one answer (``sipdo.verifiers.Verdict`` as JSON)."""

    passed: Required[bool]
    score: float
    feedback: str
    checks: list[Any]
    counterexample: Any
    task_error: bool  # the task itself cannot be graded (not the solver's fault)


class Attempt(TypedDict):
    """One answer to one task under one prompt version, with its verdict."""

    task: Task
    answer: Answer  # a string or JSON-safe structured data (see sipdo.plugins.domains.base)
    verdict: VerdictState


class ScoreCell(TypedDict, total=False):
    """What the score table keeps of one candidate on one task.

    ``passes`` of the ``n`` samples passed (``passed``: all of them); ``score``
    is the verdicts' mean partial score. A failing cell keeps a short
    ``feedback`` and ``answer`` (the trace a reflective optimizer reads).
    """

    passed: Required[bool]
    passes: Required[int]
    n: Required[int]
    score: Required[float]
    feedback: str
    answer: Answer


ScoreTable = dict[str, dict[str, ScoreCell]]  # candidate id -> task id -> cell


class CandidateState(TypedDict, total=False):
    """A prompt candidate: named text components and its lineage.

    ``text`` is what the solver sees (the components rendered); ``parent_ids``
    lists every parent (several for a merge or crossover); ``diffs`` holds the
    unified diff of ``text`` against each parent; ``flags`` name what makes it
    suspect (e.g. a task-specific rule).
    """

    id: Required[str]
    text: Required[str]
    components: Required[dict[str, str]]
    parent_ids: Required[list[str]]
    operator: str
    rationale: str
    notes: dict[str, Any]
    diffs: dict[str, str]
    flags: list[str]
    refused: list[str]  # why its demonstrations cannot be used: never evaluated nor promoted
    demonstrations: list[dict[str, Any]]  # the pool entries it shows: id, task_id, reply, tokens
    iteration: int
    step: int


class DemonstrationState(TypedDict, total=False):
    """A verified demonstration: a training task and a learner reply that passed on it.

    ``task`` is the verified task (a seed or an accepted one, never held out),
    ``reply`` the learner's whole reply (shown as the assistant's turn),
    ``answer`` what was parsed from it and graded, ``source`` the candidate that
    wrote it, ``key`` the task's dedup key, ``tokens`` an estimate of what
    showing it costs (``sipdo.plugins.optimizers.demos``).
    """

    id: Required[str]
    task_id: Required[str]
    task: Required[Task]
    reply: Required[str]
    answer: str
    source: str
    key: str
    tokens: int


class Decision(TypedDict, total=False):
    """A promotion policy's verdict on a candidate, as the history and store keep it."""

    candidate_id: Required[str]
    promoted: Required[bool]
    policy: Required[str]
    reason: Required[str]
    wins: list[str]  # tasks the candidate passes and the incumbent fails
    losses: list[str]  # tasks the incumbent passes and the candidate fails
    stats: dict[str, float]
    # what the other shipped gates decide on the same evidence (None: they would want more)
    others: dict[str, dict[str, Any]]
    vetoed: list[str]  # specificity flags that kept a policy-approved candidate back


class LearnerEntry(TypedDict):
    kind: Literal["learner"]
    phase: str
    iteration: int
    version_id: str
    passed: list[str]
    failed: list[str]
    ungradable: list[str]


class GenerationEntry(TypedDict):
    kind: Literal["generation"]
    iteration: int
    difficulty: int
    targets: list[str | None]
    new: list[str]
    rejected: list[str]


class VerificationEntry(TypedDict):
    kind: Literal["verification"]
    iteration: int
    accepted: list[str]
    rejected: dict[str, str]


class PromptAttemptEntry(TypedDict, total=False):
    """One optimizer step's outcome: the candidate it put forward (if any) and the
    promotion decision. ``fixed`` / ``broken`` are the decision's wins / losses."""

    kind: Required[Literal["prompt_attempt"]]
    iteration: Required[int]
    step: Required[int]
    version_id: str | None
    accepted: Required[bool]
    fixed: list[str]
    broken: list[str]
    scores: dict[str, float]
    feedback: str
    reason: Required[str]
    evaluated: list[str]  # every candidate the step evaluated
    notes: dict[str, Any]


class HoldoutEntry(TypedDict, total=False):
    kind: Required[Literal["holdout"]]
    iteration: Required[int]
    version_id: Required[str]
    passed: int
    total: int
    pass_at_1: float  # under sipdo's full verification
    base_pass_at_1: float  # under the tasks' own tests only
    eval_id: str  # the eval in the run store (``sipdo eval`` results)
    problems: int  # tasks that could not be graded


HistoryEntry = (
    LearnerEntry | GenerationEntry | VerificationEntry | PromptAttemptEntry | HoldoutEntry
)


class Usage(TypedDict, total=False):
    """Budget usage: per-role counters and sandbox seconds (see ``budget.add_usage``)."""

    model_calls: dict[str, int]
    input_tokens: dict[str, int]
    output_tokens: dict[str, int]
    latency_s: dict[str, float]
    sandbox_seconds: float


class FlowState(TypedDict):
    """An optimizer step in progress: the results of the request batches it made so
    far (``journal``, replayed into a fresh flow after a resume), the cells and the
    candidates those produced (committed with the decision), and — once the flow
    has ended — its ``selection``."""

    strategy: str
    step: int
    journal: list[list[Any]]
    cells: ScoreTable
    new: dict[str, CandidateState]
    selection: NotRequired[dict[str, Any]]


# -- reducers -----------------------------------------------------------------


def merge_scores(old: ScoreTable | None, new: ScoreTable | None) -> ScoreTable:
    """Score-table reducer: cells of ``new`` replace those of ``old`` (pure)."""
    out = {cid: dict(row) for cid, row in (old or {}).items()}
    for cid, row in (new or {}).items():
        out.setdefault(cid, {}).update(row)
    return out


def merge_candidates(
    old: dict[str, CandidateState] | None, new: dict[str, CandidateState] | None
) -> dict[str, CandidateState]:
    """Candidate reducer: new ids join, a known id's fields are updated (pure)."""
    out = dict(old or {})
    for cid, cand in (new or {}).items():
        out[cid] = {**out[cid], **cand} if cid in out else cand
    return out


def merge_demonstrations(
    old: dict[str, DemonstrationState] | None, new: dict[str, DemonstrationState] | None
) -> dict[str, DemonstrationState]:
    """Demonstration-pool reducer: new ids join, the first record of an id is kept (pure)."""
    out = dict(old or {})
    for did, demo in (new or {}).items():
        out.setdefault(did, demo)
    return out


def _counters(usage: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    found = (usage or {}).get(key)
    return found if isinstance(found, Mapping) else {}


def add_usage_delta(old: Mapping[str, Any] | None, delta: Mapping[str, Any] | None) -> Usage:
    """Budget reducer: counters of ``delta`` are added to ``old`` (pure)."""
    out: dict[str, Any] = {}
    for key in ("model_calls", "input_tokens", "output_tokens", "latency_s"):
        merged: dict[str, Any] = dict(_counters(old, key))
        for role, amount in _counters(delta, key).items():
            merged[role] = round(merged.get(role, 0) + amount, 4)
        out[key] = merged
    seconds = float((old or {}).get("sandbox_seconds", 0.0))
    out["sandbox_seconds"] = round(seconds + float((delta or {}).get("sandbox_seconds", 0.0)), 4)
    return out  # type: ignore[return-value]


def fresh(value: Any) -> Overwrite:
    """A value that replaces a reducer channel outright (a new run in an old thread)."""
    return Overwrite(value)


# -- the schemas ----------------------------------------------------------------


class InputState(TypedDict):
    """What a caller passes in.

    ``seed_tasks`` defaults to the domain's shipped seeds, on every invocation:
    seeds given to an earlier run in the same thread are not reused.
    """

    prompt: str
    seed_tasks: NotRequired[list[Task] | None]


class OutputState(TypedDict, total=False):
    """What a run returns."""

    best_prompt: str
    accepted_tasks: Annotated[list[Task], operator.add]
    rejected_tasks: Annotated[list[Task], operator.add]  # each with "reason"
    history: Annotated[list[HistoryEntry], operator.add]
    prompt_versions: Annotated[list[dict[str, Any]], operator.add]
    budget_used: Annotated[Usage, add_usage_delta]
    stop_reason: str
    iteration: int
    difficulty: int
    verified_tasks: dict[str, Task]  # every verified task (seeds + accepted), by id
    score_table: Annotated[ScoreTable, merge_scores]  # candidate x verified task
    candidates: Annotated[dict[str, CandidateState], merge_candidates]
    decisions: Annotated[list[Decision], operator.add]
    holdout: list[HoldoutEntry]  # held-out results: the initial and each promoted version
    # verified demonstrations by id (kept only when the run allows demonstrations)
    demonstrations: Annotated[dict[str, DemonstrationState], merge_demonstrations]


class SipdoState(InputState, OutputState, total=False):
    """The full working state of a run."""

    seeds: list[Task]  # the run's seed tasks (``seed_tasks`` is only the input)
    phase: str  # "seed": learner on seed tasks; "accepted": learner on new accepted tasks
    current_prompt: str
    version_id: str  # the incumbent candidate's id
    pending: list[Task]  # tasks the learner runs next
    new_tasks: list[Task]  # generated this iteration, not yet verified
    checker_answers: dict[str, list[Answer]]  # task id -> the checkers' independent answers
    seen_keys: dict[str, str]  # dedup key -> id of the first task with that key
    step: int  # optimizer steps taken in this iteration
    flow: FlowState | None  # the optimizer step in progress
    # promoted by the policy, awaiting approval: a CandidateState plus its "decision",
    # "feedback" (textual reward), "scores", "notes" and the step's "evaluated" ids
    pending_candidate: dict[str, Any] | None
    pending_decision: Decision | None
    last_approved: bool
    strategy_state: dict[str, Any]  # the strategy's own JSON state (pool, ratings, front)
    stop_requested: str | None  # a node's reason to end the run (e.g. "holdout_drop")


def incumbent_row(state: Mapping[str, Any]) -> dict[str, ScoreCell]:
    """The incumbent's score-table row over the verified tasks."""
    row = dict(state.get("score_table", {}).get(state.get("version_id", ""), {}))
    known = state.get("verified_tasks", {})
    return {tid: cell for tid, cell in row.items() if tid in known}


def failures_of(state: Mapping[str, Any]) -> list[str]:
    """Ids of the verified tasks the incumbent fails."""
    return [tid for tid, cell in incumbent_row(state).items() if not cell["passed"]]


def solved_of(state: Mapping[str, Any]) -> list[str]:
    """Ids of the verified tasks the incumbent solves."""
    return [tid for tid, cell in incumbent_row(state).items() if cell["passed"]]


def failure_records(state: Mapping[str, Any]) -> list[Attempt]:
    """The incumbent's failures as ``{"task", "answer", "verdict"}`` (from its cells)."""
    tasks = state.get("verified_tasks", {})
    out: list[Attempt] = []
    for tid, cell in incumbent_row(state).items():
        if cell["passed"]:
            continue
        verdict: VerdictState = {
            "passed": False,
            "score": float(cell["score"]),
            "feedback": str(cell.get("feedback", "")),
        }
        out.append({"task": tasks[tid], "answer": cell.get("answer", ""), "verdict": verdict})
    return out
