"""What the run store's readers return: frozen, session-free records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RunRecord:
    """A run; ``status`` is ``running`` until ``finish_run`` (a killed run stays ``running``:
    ``config["owner"]``, set by ``mark_running``, tells who was running it)."""

    run_id: str
    status: str
    config: dict[str, Any]
    initial_prompt: str
    best_prompt: str | None
    stop_reason: str | None
    created_at: datetime
    finished_at: datetime | None
    prompt_versions: int = 0
    accepted_tasks: int = 0
    rejected_tasks: int = 0
    best_score: float | None = None


@dataclass(frozen=True)
class PromptVersionRecord:
    """One prompt version; ``diff`` is the unified diff against ``parent_id`` (or empty text)."""

    version_id: str
    parent_id: str | None
    text: str
    diff: str
    accepted: bool
    scores: dict[str, float]
    feedback: str
    iteration: int
    created_at: datetime
    parent_ids: tuple[str, ...] = ()
    components: dict[str, str] = field(default_factory=dict)
    operator: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VerdictRecord:
    """One verdict a task received, in the order they were given."""

    status: str
    reason: str
    verdict: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True)
class TaskRecord:
    """A task, its latest status and its provenance.

    ``first_failed_version`` / ``first_solved_version`` are the first prompt
    versions whose attempt (by a solving role: not ``generator`` or ``checker``)
    failed / passed this task, derived from the attempts.
    """

    task_id: str
    task: dict[str, Any]
    status: str
    reason: str
    difficulty: int
    weakness: str
    verdicts: tuple[VerdictRecord, ...] = field(default_factory=tuple)
    first_failed_version: str | None = None
    first_solved_version: str | None = None


@dataclass(frozen=True)
class AttemptRecord:
    """One answer by ``role`` under a prompt version; ``feedback`` is the textual reward."""

    task_id: str
    prompt_version_id: str
    role: str
    answer: str  # the text form (a structured answer as JSON text)
    passed: bool
    score: float
    feedback: str
    created_at: datetime
    structured: Any = None  # a structured answer as it was; None for a string answer

    @property
    def value(self) -> Any:
        """The answer as the domain gave it: the structured data, else the string."""
        return self.answer if self.structured is None else self.structured


@dataclass(frozen=True)
class UsageRecord:
    """Model usage summed over every recorded call of one (role, model)."""

    role: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    latency_s: float


@dataclass(frozen=True)
class PromptModelRoundRecord:
    """One round of training a prompt model on a run's textual rewards.

    ``train_loss`` is the mean SFT loss of the round; ``heldout_reward`` the mean
    verifier score (0..1) and ``heldout_pass_rate`` the share passed of the learner
    on the held-out queries under the round's per-query prompts (None when the
    round had no held-out queries). ``optimal_reward`` is the textual reward the
    prompt model is conditioned on after the round.
    """

    training_id: str
    round: int
    base_model: str
    output_dir: str
    train_examples: int
    train_loss: float | None
    heldout_tasks: int
    heldout_reward: float | None
    heldout_pass_rate: float | None
    optimal_reward: str
    seconds: float
    created_at: datetime
