"""The built-in ``code`` domain: Python functions with reference solutions and pytest tests."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field, ValidationError

from sipdo.errors import ConfigurationError
from sipdo.plugins.domains.base import Domain, SandboxProvider, Task, VerdictDict
from sipdo.structured import extract_code
from sipdo.verifiers.types import CodeTask

if TYPE_CHECKING:
    from sipdo.verifiers import VerifierConfig

GENERATOR_SYSTEM = (
    "You write new Python coding tasks that expose a specific weakness of a solver. "
    "Each task is one function: a signature with a precise docstring, a correct reference "
    "solution, and pytest tests that import the function with `from solution import NAME` "
    "and pin down the tricky cases. Tasks must be unambiguous and self-contained."
)


class GeneratedCodeTask(BaseModel):
    """What the generator returns for one coding task."""

    prompt: str = Field(description="Function signature and docstring, no body.")
    entry_point: str = Field(description="Name of the function.")
    reference_solution: str = Field(description="Complete module source defining the function.")
    tests: str = Field(description="pytest source; imports the function from `solution`.")
    weakness: str = Field(default="", description="The weakness this task targets.")


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


class CodeDomain(Domain):
    """Coding tasks graded by ``sipdo.verifiers`` in the sandbox.

    ``verifier_config`` tunes the verifiers (Hypothesis examples, mutants, time
    budgets); None keeps their defaults.
    """

    name = "code"
    max_difficulty = 5
    generated_schema: type[BaseModel] = GeneratedCodeTask

    def __init__(self, verifier_config: VerifierConfig | None = None) -> None:
        self.verifier_config = verifier_config

    def seed_tasks(self) -> list[Task]:
        """The ~8 small original tasks shipped in ``code_seeds.jsonl``."""
        text = files("sipdo.plugins.domains").joinpath("code_seeds.jsonl").read_text("utf-8")
        return [self.validate_task(json.loads(line)) for line in text.splitlines() if line.strip()]

    def validate_task(self, data: Mapping[str, Any]) -> Task:
        """Normal form of a user task; ``ConfigurationError`` names the bad field."""
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"a code task must be an object, got {type(data).__name__}")
        try:
            task = CodeTask.model_validate(dict(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "<task>"
            raise ConfigurationError(f"invalid code task ({where}): {first['msg']}") from exc
        return task.model_dump(mode="json")

    def task_from_generated(
        self, generated: BaseModel, *, difficulty: int, weakness: str, provenance: Mapping[str, Any]
    ) -> Task:
        """A ``CodeTask`` dict; ``ValueError`` if the entry point or the tests are unusable."""
        gen = GeneratedCodeTask.model_validate(generated.model_dump())
        entry = gen.entry_point.strip()
        if not entry.isidentifier():
            raise ValueError(f"entry point {entry!r} is not a Python identifier")
        if not re.search(rf"\bdef\s+{re.escape(entry)}\b", gen.reference_solution):
            raise ValueError(f"the reference solution does not define {entry}()")
        if "solution" not in gen.tests or entry not in gen.tests:
            raise ValueError(f"the tests do not import {entry} from solution")
        task = CodeTask(
            prompt=gen.prompt.strip() + "\n",
            entry_point=entry,
            reference_solution=extract_code(gen.reference_solution, entry),
            tests=extract_code(gen.tests),
            difficulty=difficulty,
            weakness=gen.weakness.strip() or weakness,
            provenance=dict(provenance),
        )
        return task.model_dump(mode="json")

    def dedup_key(self, task: Task) -> str:
        raw = _normalize(str(task.get("prompt", ""))) + "\x1f" + str(task.get("entry_point", ""))
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]

    def solve_messages(self, task: Task, system_prompt: str) -> list[BaseMessage]:
        return [
            SystemMessage(content=system_prompt),
            HumanMessage(
                content="Implement this Python function. Reply with the complete module in one "
                f"```python block.\n\n{task['prompt']}"
            ),
        ]

    def parse_answer(self, task: Task, text: str) -> str:
        return extract_code(text, str(task.get("entry_point") or "") or None)

    def generate_messages(
        self,
        *,
        target: Mapping[str, Any] | None,
        difficulty: int,
        examples: Sequence[Task],
        rejections: Sequence[str] = (),
    ) -> list[BaseMessage]:
        if target is None:
            aim = "The solver solved everything so far: write a harder task on a new edge case."
        else:
            aim = "The solver failed this task; write a NEW task aimed at the same weakness.\n"
            aim += self.describe_failure(target)
        known = ", ".join(sorted({str(t.get("entry_point")) for t in examples})[:30])
        if rejections:
            aim += "\n\nRecent tasks were rejected by the verifier; avoid these problems:\n"
            aim += "\n".join(f"- {r[:300]}" for r in rejections)
        return [
            SystemMessage(content=GENERATOR_SYSTEM),
            HumanMessage(
                content=f"{aim}\n\nDifficulty: {difficulty} on a 1-{self.max_difficulty} scale "
                f"(one above the last accepted level). Do not reuse these function names: "
                f"{known or '(none)'}. Put the targeted weakness in `weakness`."
            ),
        ]

    def describe_failure(self, failure: Mapping[str, Any]) -> str:
        task = failure.get("task") or {}
        verdict = failure.get("verdict") or {}
        answer = str(failure.get("answer", ""))[:1200]
        return (
            f"Task {task.get('id')} (weakness: {task.get('weakness') or 'unknown'}):\n"
            f"{task.get('prompt', '')}\nSolver's answer:\n{answer}\n"
            f"Verifier feedback: {str(verdict.get('feedback', ''))[:800]}"
        )

    async def averify_task(
        self, task: Task, *, checker_answer: str | None, sandbox: SandboxProvider
    ) -> VerdictDict:
        from sipdo.verifiers import averify_task

        verdict = await averify_task(
            CodeTask.model_validate(task),
            sandbox=await sandbox.get(),
            checker_solution=checker_answer,
            config=self.verifier_config,
        )
        return verdict.model_dump(mode="json")

    async def averify_answer(
        self, task: Task, answer: str, *, sandbox: SandboxProvider
    ) -> VerdictDict:
        from sipdo.verifiers import averify_solution

        verdict = await averify_solution(
            CodeTask.model_validate(task),
            answer,
            sandbox=await sandbox.get(),
            config=self.verifier_config,
        )
        return verdict.model_dump(mode="json")
