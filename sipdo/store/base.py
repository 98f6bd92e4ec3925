"""``BaseRunStore``: the run-store contract the graph and the CLI rely on.

Every write is idempotent: a run resumed from a checkpoint re-executes the
node that was interrupted, so it repeats the writes that node had already
made, and the store must end up as if they had been made once. Errors of the
database itself are ``StoreError``; an unknown run is ``RunNotFoundError``;
bad arguments are ``ConfigurationError``.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self

from sipdo.answers import Answer
from sipdo.store.records import (
    AttemptRecord,
    PromptModelRoundRecord,
    PromptVersionRecord,
    RunRecord,
    TaskRecord,
    UsageRecord,
)

TaskStatus = Literal["seed", "accepted", "rejected"]
TASK_STATUSES: tuple[str, ...] = ("seed", "accepted", "rejected")


class BaseRunStore(ABC):
    """Records runs, prompt versions, tasks, attempts and model usage; reads them back."""

    # -- writes ---------------------------------------------------------------
    @abstractmethod
    def create_run(self, run_id: str, config: Mapping[str, Any], initial_prompt: str) -> None:
        """Start a run. Repeating it keeps the first prompt and adds new config keys."""

    @abstractmethod
    def record_prompt_version(
        self,
        run_id: str,
        version_id: str,
        text: str,
        parent_id: str | None,
        accepted: bool,
        scores: Mapping[str, float],
        feedback: str,
        iteration: int,
        *,
        parent_ids: Sequence[str] | None = None,
        components: Mapping[str, str] | None = None,
        operator: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Store a prompt version and its diff against ``parent_id`` (which must exist).

        ``parent_ids`` lists every parent (``parent_id`` is the first); ``components``,
        ``operator`` and ``meta`` (JSON) describe the candidate. Repeating it with the
        same id updates the verdict fields and ``meta``, never the text or lineage.
        """

    @abstractmethod
    def record_task(
        self,
        run_id: str,
        task: Mapping[str, Any],
        status: TaskStatus,
        reason: str,
        verdict: Mapping[str, Any] | None,
        difficulty: int,
        weakness: str,
    ) -> None:
        """Upsert a task by ``task["id"]`` and append its verdict (identical ones kept once).

        A verified task (``seed`` / ``accepted``) is never downgraded: a later
        ``rejected`` (the same task generated again and rejected as a duplicate)
        only joins its verdict history, and its stored task stays as it was.
        """

    @abstractmethod
    def record_attempt(
        self,
        run_id: str,
        task_id: str,
        prompt_version_id: str,
        role: str,
        answer: Answer,
        passed: bool,
        score: float,
        feedback: str,
    ) -> None:
        """Store one attempt; the same (task, prompt version, role) again replaces it.
        ``answer`` is a string or JSON-safe structured data (``sipdo.answers``); a
        structured one is kept as it is and as its text form."""

    @abstractmethod
    def record_usage(
        self,
        run_id: str,
        role: str,
        model: str,
        calls: int,
        input_tokens: int,
        output_tokens: int,
        latency_s: float,
        call_id: str | None = None,
    ) -> None:
        """Add model usage. With a ``call_id`` a repeat is ignored; without one it adds up.

        Give a ``call_id`` that is stable across a resume (for example derived
        from the run, node, iteration and task) so a re-executed node does not
        count twice.
        """

    @abstractmethod
    def record_prompt_model_round(
        self,
        run_id: str,
        training_id: str,
        round: int,
        *,
        base_model: str,
        output_dir: str,
        train_examples: int,
        train_loss: float | None,
        heldout_tasks: int,
        heldout_reward: float | None,
        heldout_pass_rate: float | None,
        optimal_reward: str,
        seconds: float,
    ) -> None:
        """Store one training round of a prompt model trained on this run; the same
        (training, round) again replaces it (a resumed training repeats a round)."""

    @abstractmethod
    def finish_run(self, run_id: str, status: str, best_prompt: str, stop_reason: str) -> None:
        """Mark the run finished (repeatable: the last call wins)."""

    @abstractmethod
    def mark_running(self, run_id: str, owner: Mapping[str, Any]) -> None:
        """The run is (again) being worked on by ``owner`` (JSON-safe, e.g. host and
        pid, kept as ``config["owner"]``): status ``running``, no stop reason."""

    # -- reads ----------------------------------------------------------------
    @abstractmethod
    def list_runs(self) -> list[RunRecord]:
        """Every run, newest first, with counts of prompt versions and tasks."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord:
        """One run; ``RunNotFoundError`` if there is none with that id."""

    @abstractmethod
    def prompt_lineage(self, run_id: str) -> list[PromptVersionRecord]:
        """Every prompt version of the run in the order recorded."""

    @abstractmethod
    def tasks(self, run_id: str) -> list[TaskRecord]:
        """Every task of the run in the order first recorded, with verdicts and provenance."""

    @abstractmethod
    def attempts(self, run_id: str) -> list[AttemptRecord]:
        """Every attempt of the run in the order first recorded."""

    @abstractmethod
    def usage(self, run_id: str) -> list[UsageRecord]:
        """Model usage summed per (role, model)."""

    @abstractmethod
    def prompt_model_rounds(self, run_id: str) -> list[PromptModelRoundRecord]:
        """Every prompt-model training round recorded for the run, by training then round."""

    def export(self, run_id: str, fmt: str) -> Iterator[dict[str, Any]]:
        """Training / evaluation records of a run; see ``sipdo.store.export.FORMATS``."""
        from sipdo.store.export import export_run

        return export_run(self, run_id, fmt)

    # -- lifecycle --------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Release connections. Idempotent."""

    async def aclose(self) -> None:
        """Async twin of ``close``."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
