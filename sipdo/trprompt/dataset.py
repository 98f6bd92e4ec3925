"""The training set of a prompt model: a run's verified tasks and textual rewards.

Read through the run store's exports (``eval`` for the verified tasks,
``textual-reward`` for the (query, prompt, reward) triples). Only verified tasks
(seed or accepted) are queries: a rejected task is unsound, and a reward earned
on it teaches nothing. A share of the tasks is held out of training to measure
each round, and no task may be a problem of the evaluation set (``HeldOut``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.store import BaseRunStore
from sipdo.trprompt.hygiene import HeldOut, normalize, statement


@dataclass(frozen=True)
class Example:
    """One (query, prompt, textual reward) triple; ``origin`` is ``run:<id>`` or ``round-<k>``."""

    key: str
    query: str
    prompt: str
    reward: str
    score: float
    passed: bool
    origin: str

    def as_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@dataclass(frozen=True)
class TrainingSet:
    """Verified tasks by key, which keys train and which are held out, and the run's rewards
    on the training keys (rewards on held-out keys are left out with them)."""

    runs: tuple[str, ...]
    tasks: dict[str, dict[str, Any]]
    train: tuple[str, ...]
    heldout: tuple[str, ...]
    examples: tuple[Example, ...] = field(default=())


def task_key(task: dict[str, Any]) -> str:
    """One key per task across runs: a digest of its normalized statement and entry point."""
    raw = normalize(statement(task)) + "\x1f" + str(task.get("entry_point", ""))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


def split(keys: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, held out): a stable pseudo-random ``fraction`` of ``keys`` held out, at least
    one when the fraction is positive and at least one key stays for training."""
    if not 0 <= fraction < 1:
        raise ConfigurationError(f"the held-out fraction must be in [0, 1), got {fraction}")
    order = sorted(keys, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())
    n_out = 0 if fraction == 0 else min(len(order) - 1, max(1, math.ceil(len(order) * fraction)))
    return sorted(order[n_out:], key=keys.index), sorted(order[:n_out], key=keys.index)


def load_training_set(
    store: BaseRunStore,
    run_ids: Sequence[str],
    *,
    heldout_fraction: float = 0.25,
    min_rewards: int = 8,
    seed: int = 0,
    evaluation_set: HeldOut | None = None,
) -> TrainingSet:
    """The training set of ``run_ids``; ConfigurationError if it is too small or touches
    the evaluation set (default: HumanEval)."""
    if not run_ids:
        raise ConfigurationError("give at least one run to train on")
    tasks: dict[str, dict[str, Any]] = {}
    keys_by_run: dict[tuple[str, str], str] = {}
    for run_id in dict.fromkeys(run_ids):
        for record in store.export(run_id, "eval"):  # seed and accepted tasks only
            key = task_key(record["task"])
            tasks.setdefault(key, record["task"])
            keys_by_run[(run_id, record["id"])] = key
    guard = evaluation_set if evaluation_set is not None else HeldOut.humaneval()
    guard.check(tasks.values(), what="of the runs' verified tasks")
    train, heldout = split(list(tasks), heldout_fraction, seed)
    trained = set(train)
    examples: list[Example] = []
    for run_id in dict.fromkeys(run_ids):
        for r in store.export(run_id, "textual-reward"):
            known = keys_by_run.get((run_id, r["task_id"]))
            if known is None or known not in trained or not r["prompt"].strip():
                continue  # an unverified or held-out task, or an attempt without a prompt
            examples.append(
                Example(
                    key=known,
                    query=r["query"],
                    prompt=r["prompt"],
                    reward=str(r["reward"] or ("passed" if r["passed"] else "failed")),
                    score=float(r["score"]),
                    passed=bool(r["passed"]),
                    origin=f"run:{run_id}",
                )
            )
    names = ", ".join(dict.fromkeys(run_ids))
    if len(examples) < min_rewards or not train:
        raise ConfigurationError(
            f"run(s) {names} have {len(examples)} textual rewards on {len(train)} verified "
            f"training tasks; training a prompt model needs at least {min_rewards}: run the "
            "loop longer (sipdo run --iterations N), train on more runs, or lower --min-rewards"
        )
    return TrainingSet(
        runs=tuple(dict.fromkeys(run_ids)),
        tasks=tasks,
        train=tuple(train),
        heldout=tuple(heldout),
        examples=tuple(examples),
    )


def best_examples(pool: Sequence[Example], per_query: int) -> list[Example]:
    """The SFT data of a round: per query, the ``per_query`` best distinct prompts (by score,
    newest first on a tie), each kept with the reward it earned."""
    chosen: list[Example] = []
    by_key: dict[str, list[Example]] = {}
    for ex in pool:
        by_key.setdefault(ex.key, []).append(ex)
    for items in by_key.values():
        ranked = sorted(enumerate(items), key=lambda p: (-p[1].score, -p[0]))
        seen: set[str] = set()
        for _, ex in ranked:
            if ex.prompt not in seen and len(seen) < per_query:
                seen.add(ex.prompt)
                chosen.append(ex)
    return chosen
