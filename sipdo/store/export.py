"""Export a run as training / evaluation data (one dict per JSONL line).

Formats:

- ``eval``: every verified task (status ``seed`` or ``accepted``), as an eval set.
- ``sft``: (prompt, task, good answer) for every passing solving attempt.
- ``dpo``: preference pairs, ``kind`` ``prompt`` (a rejected candidate prompt vs
  the accepted prompt that replaced its parent, or the parent itself) and ``kind``
  ``answer`` (a failing answer vs a passing answer, or the verified reference
  solution, to the same task).
- ``textual-reward``: (query, prompt, answer, textual reward) for every solving
  attempt: the TRPrompt training triples.
- ``demonstrations``: every prompt version that carried verified demonstrations,
  with each one's task (id, query) and the learner's verified reply.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sipdo.errors import ConfigurationError
from sipdo.store.reads import NON_SOLVING_ROLES
from sipdo.store.records import AttemptRecord, PromptVersionRecord, TaskRecord

if TYPE_CHECKING:
    from sipdo.store.base import BaseRunStore

VERIFIED = ("seed", "accepted")


def query_of(task: TaskRecord) -> str:
    """The text a solver is shown for ``task`` (its ``prompt``, else the task as JSON)."""
    prompt = task.task.get("prompt")
    return prompt if isinstance(prompt, str) else json.dumps(task.task, sort_keys=True)


def _eval(store: BaseRunStore, run_id: str) -> Iterator[dict[str, Any]]:
    for t in store.tasks(run_id):
        if t.status in VERIFIED:
            yield {
                "id": t.task_id,
                "status": t.status,
                "difficulty": t.difficulty,
                "weakness": t.weakness,
                "task": t.task,
            }


def _solving(store: BaseRunStore, run_id: str) -> Iterator[tuple[AttemptRecord, TaskRecord, str]]:
    """Solving attempts on known tasks with the text of their prompt version."""
    prompts = {p.version_id: p.text for p in store.prompt_lineage(run_id)}
    tasks = {t.task_id: t for t in store.tasks(run_id)}
    for a in store.attempts(run_id):
        task = tasks.get(a.task_id)
        if a.role in NON_SOLVING_ROLES or task is None:
            continue
        yield a, task, prompts.get(a.prompt_version_id, "")


def _sft(store: BaseRunStore, run_id: str) -> Iterator[dict[str, Any]]:
    seen: set[tuple[str, str, str]] = set()
    for a, task, prompt in _solving(store, run_id):
        key = (prompt, a.task_id, a.answer)
        if a.passed and task.status in VERIFIED and key not in seen:
            seen.add(key)
            yield {
                "prompt": prompt,
                "task_id": a.task_id,
                "query": query_of(task),
                "answer": a.value,
                "prompt_version_id": a.prompt_version_id,
                "score": a.score,
            }


def _prompt_pairs(lineage: list[PromptVersionRecord]) -> Iterator[dict[str, Any]]:
    by_id = {p.version_id: p for p in lineage}
    for p in lineage:
        if p.accepted or p.parent_id is None:
            continue
        chosen = next(
            (q for q in lineage if q.accepted and q.parent_id == p.parent_id), None
        ) or by_id.get(p.parent_id)
        if chosen is None or chosen.text == p.text:
            continue
        yield {
            "kind": "prompt",
            "chosen": chosen.text,
            "rejected": p.text,
            "chosen_id": chosen.version_id,
            "rejected_id": p.version_id,
            "reason": p.feedback,
        }


def _dpo(store: BaseRunStore, run_id: str) -> Iterator[dict[str, Any]]:
    yield from _prompt_pairs(store.prompt_lineage(run_id))
    # Answers are compared by their text form and exported as the domain gave them.
    right: dict[str, tuple[str, Any]] = {}
    wrong: dict[str, dict[str, Any]] = {}
    tasks: dict[str, TaskRecord] = {}
    for a, task, _ in _solving(store, run_id):
        tasks[a.task_id] = task
        if a.passed:
            right.setdefault(a.task_id, (a.answer, a.value))
        else:
            wrong.setdefault(a.task_id, {}).setdefault(a.answer, a.value)
    for task_id, answers in wrong.items():
        task = tasks[task_id]
        reference = task.task.get("reference_solution")
        chosen = right.get(task_id)
        if chosen is None and task.status in VERIFIED and isinstance(reference, str):
            chosen = (reference, reference)
        for text, answer in answers.items():
            if chosen is not None and text != chosen[0]:
                yield {
                    "kind": "answer",
                    "task_id": task_id,
                    "prompt": query_of(task),
                    "chosen": chosen[1],
                    "rejected": answer,
                }


def _textual_reward(store: BaseRunStore, run_id: str) -> Iterator[dict[str, Any]]:
    for a, task, prompt in _solving(store, run_id):
        yield {
            "query": query_of(task),
            "prompt": prompt,
            "answer": a.value,
            "reward": a.feedback,
            "passed": a.passed,
            "score": a.score,
            "task_id": a.task_id,
            "prompt_version_id": a.prompt_version_id,
        }


def _demonstrations(store: BaseRunStore, run_id: str) -> Iterator[dict[str, Any]]:
    tasks = {t.task_id: t for t in store.tasks(run_id)}
    for p in store.prompt_lineage(run_id):
        shown = p.meta.get("demonstrations") or []
        if not shown:
            continue
        yield {
            "prompt_version_id": p.version_id,
            "accepted": p.accepted,
            "prompt": p.text,
            "demonstrations": [
                {
                    "id": d.get("id"),
                    "task_id": d.get("task_id"),
                    "query": query_of(tasks[d["task_id"]]) if d.get("task_id") in tasks else "",
                    "reply": d.get("reply", ""),
                }
                for d in shown
            ],
        }


FORMATS: dict[str, Callable[[BaseRunStore, str], Iterator[dict[str, Any]]]] = {
    "eval": _eval,
    "sft": _sft,
    "dpo": _dpo,
    "textual-reward": _textual_reward,
    "demonstrations": _demonstrations,
}


def export_run(store: BaseRunStore, run_id: str, fmt: str) -> Iterator[dict[str, Any]]:
    """Records of ``run_id`` in format ``fmt``; ConfigurationError lists the formats.

    The run is checked (RunNotFoundError) before the first record is asked for.
    """
    if fmt not in FORMATS:
        raise ConfigurationError(f"unknown export format {fmt!r}; available: {', '.join(FORMATS)}")
    store.get_run(run_id)
    return FORMATS[fmt](store, run_id)
