"""The prompt-model half of ``RunStore``: training rounds of a TRPrompt prompt model.

``sipdo train-prompt-model`` writes one row per source run and round;
``prompt_model_rounds(run_id)`` is what a run's report reads back.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlmodel import Session, col, select

from sipdo.errors import ConfigurationError
from sipdo.store.records import PromptModelRoundRecord
from sipdo.store.tables import PromptModelRoundRow, RunRow, utcnow


def _metric(value: float | None, what: str) -> float | None:
    """``value`` as a finite float (or None); NaN / inf is a ConfigurationError."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ConfigurationError(f"{what} must be a finite number, got {value!r}")
    return number


class PromptModelRounds:
    """Writer and reader of ``PromptModelRoundRow``; the subclass provides sessions."""

    @abstractmethod
    def _session(self) -> AbstractContextManager[Session]: ...

    @staticmethod
    @abstractmethod
    def _run(session: Session, run_id: str) -> RunRow: ...

    @abstractmethod
    def _upsert(self, write: Callable[[Session], None]) -> None: ...

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
        if not training_id:
            raise ConfigurationError("training_id must be a non-empty string")
        if round < 1 or train_examples < 0 or heldout_tasks < 0 or seconds < 0:
            raise ConfigurationError(
                "round must be >= 1; example and task counts and seconds must not be negative"
            )
        values: dict[str, Any] = {
            "base_model": base_model,
            "output_dir": output_dir,
            "train_examples": train_examples,
            "train_loss": _metric(train_loss, "train_loss"),
            "heldout_tasks": heldout_tasks,
            "heldout_reward": _metric(heldout_reward, "heldout_reward"),
            "heldout_pass_rate": _metric(heldout_pass_rate, "heldout_pass_rate"),
            "optimal_reward": optimal_reward,
            "seconds": float(seconds),
        }

        def write(session: Session) -> None:
            self._run(session, run_id)
            row = session.exec(
                select(PromptModelRoundRow).where(
                    PromptModelRoundRow.run_id == run_id,
                    PromptModelRoundRow.training_id == training_id,
                    PromptModelRoundRow.round == round,
                )
            ).first()
            if row is None:
                session.add(
                    PromptModelRoundRow(
                        run_id=run_id, training_id=training_id, round=round, **values
                    )
                )
                return
            for name, value in values.items():
                setattr(row, name, value)
            row.created_at = utcnow()

        self._upsert(write)

    def prompt_model_rounds(self, run_id: str) -> list[PromptModelRoundRecord]:
        with self._session() as session:
            self._run(session, run_id)
            rows = session.exec(
                select(PromptModelRoundRow)
                .where(PromptModelRoundRow.run_id == run_id)
                .order_by(col(PromptModelRoundRow.seq))
            ).all()
        first_seen: dict[str, int] = {}
        for r in rows:
            first_seen.setdefault(r.training_id, len(first_seen))
        rows = sorted(rows, key=lambda r: (first_seen[r.training_id], r.round))
        return [
            PromptModelRoundRecord(
                training_id=r.training_id,
                round=r.round,
                base_model=r.base_model,
                output_dir=r.output_dir,
                train_examples=r.train_examples,
                train_loss=r.train_loss,
                heldout_tasks=r.heldout_tasks,
                heldout_reward=r.heldout_reward,
                heldout_pass_rate=r.heldout_pass_rate,
                optimal_reward=r.optimal_reward,
                seconds=r.seconds,
                created_at=r.created_at,
            )
            for r in rows
        ]
