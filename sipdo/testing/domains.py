"""``SumDomain``: the smallest complete domain, for users' tests and the contract suite.

A task is two integers; the answer is their sum. Everything a domain must
write is here in a few lines each (``BaseDomain`` gives the rest), graded
in-process without a sandbox, so it shows the seam rather than a verifier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ValidationError

from sipdo.errors import ConfigurationError
from sipdo.plugins.domains.base import (
    Answer,
    BaseDomain,
    SandboxProvider,
    Task,
    answer_text,
    system_and_user,
)
from sipdo.verifiers.types import Verdict, content_id


class SumTask(BaseModel):
    """What the generator writes: two numbers and their sum."""

    a: int
    b: int
    answer: int
    weakness: str = ""


class SumDomain(BaseDomain):
    """Add two integers. The generator's ``answer`` is hidden from solvers and
    checked against ``a + b``; a majority of the checkers must agree."""

    name = "sum"
    generated_schema: type[BaseModel] = SumTask
    default_prompt = "Add the two numbers. Reply with the number only."
    hidden_fields = ("answer",)
    n_checkers = 3

    def __init__(self, seeds: Sequence[tuple[int, int]] = ((2, 3), (40, 2), (-7, 7))) -> None:
        self._seeds = list(seeds)

    def seed_tasks(self) -> list[Task]:
        return [self.validate_task({"a": a, "b": b, "answer": a + b}) for a, b in self._seeds]

    def validate_task(self, data: Mapping[str, Any]) -> Task:
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"a sum task must be an object, got {type(data).__name__}")
        try:
            task = SumTask.model_validate({k: data[k] for k in ("a", "b", "answer") if k in data})
        except ValidationError as exc:
            raise ConfigurationError(f"invalid sum task: {exc.errors()[0]['msg']}") from exc
        return self._task(task, int(data.get("difficulty", 1)), str(data.get("weakness", "")))

    def _task(self, task: SumTask, difficulty: int, weakness: str) -> Task:
        tid = content_id(str(task.a), str(task.b), prefix="sum")
        return {"id": tid, "a": task.a, "b": task.b, "answer": task.answer,
                "difficulty": difficulty, "weakness": weakness}  # fmt: skip

    def task_from_generated(
        self, generated: BaseModel, *, difficulty: int, weakness: str, provenance: Mapping[str, Any]
    ) -> Task:
        return self._task(SumTask.model_validate(generated.model_dump()), difficulty, weakness)

    def solve_messages(self, task: Task, system_prompt: str) -> list[BaseMessage]:
        return system_and_user(system_prompt, f"What is {task['a']} + {task['b']}?")

    def generate_messages(
        self,
        *,
        target: Mapping[str, Any] | None,
        difficulty: int,
        examples: Sequence[Task],
        rejections: Sequence[str] = (),
    ) -> list[BaseMessage]:
        return system_and_user(
            "You write addition tasks.",
            f"Write two integers and their sum (difficulty {difficulty}).",
        )

    async def averify_task(
        self,
        task: Task,
        *,
        checker_answer: Answer | None,
        sandbox: SandboxProvider,
        checker_answers: Sequence[Answer] = (),
    ) -> Verdict:
        if task["answer"] != task["a"] + task["b"]:
            return Verdict(passed=False, score=0.0, feedback="the answer is not the sum")
        votes = sum(answer_text(a).strip() == str(task["answer"]) for a in checker_answers)
        if votes * 2 <= len(checker_answers):
            return Verdict(passed=False, score=0.0, feedback="the checkers disagree")
        return Verdict(passed=True, score=1.0, feedback="verified")

    async def averify_answer(
        self, task: Task, answer: Answer, *, sandbox: SandboxProvider
    ) -> Verdict:
        ok = answer_text(answer).strip() == str(task["a"] + task["b"])
        return Verdict(passed=ok, score=float(ok), feedback="correct" if ok else "wrong sum")
