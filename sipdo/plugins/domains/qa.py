"""The built-in ``qa`` domain: reasoning questions with answers checked exactly.

The generator proposes a question with its answer and, for the families that
have a programmatic solver (orderings and other relational puzzles, arithmetic
word problems, date arithmetic), a spec from which the verifier re-derives the
answer by code in the sandbox (``qasolve``). ``n_checkers`` independent
checkers answer blind; a task is accepted when the derived answer (or, for a
free-form question, the generator's) is the generator's and a majority of the
checkers reach it. Ambiguous or underdetermined questions are rejected with
the reason. A solver's answer is structured: ``{"final_answers": [...]}``, every
``ANSWER:`` line of the reply in order (``final_answers``); it is graded exactly
after normalization (case, spacing, number format, dates), and hedges and
several different final answers fail. (Answers stored by earlier versions, the
final answers one a line in a string, are read the same way.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from fractions import Fraction
from importlib.resources import files
from typing import Any, Literal

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sipdo.errors import ConfigurationError, VerificationError
from sipdo.plugins.domains.base import (
    Answer,
    BaseDomain,
    SandboxProvider,
    Task,
    system_and_user,
)
from sipdo.sandbox import Limits
from sipdo.verifiers.consensus import normalize_answer
from sipdo.verifiers.types import Check, Verdict, content_id

Family = Literal["ordering", "arithmetic", "date", "free"]

DEFAULT_PROMPT = "Answer the question."

FORMAT = (
    "Think step by step, then end with one line `ANSWER: <answer>`: a name exactly as the "
    "question writes it, a number in digits, a date as YYYY-MM-DD, a weekday by name."
)

GENERATOR_SYSTEM = (
    "You write reasoning questions that expose a weakness of a solver: relational puzzles "
    "(orderings), arithmetic word problems, date arithmetic. Every question has exactly one "
    "correct answer. Give the answer and a spec from which a program re-derives it:\n"
    '- ordering: {"relations": [["A", "B"], ...], "ask": "max" or "min"}; each pair says A '
    "ranks above B in the quantity asked about (older, taller, ...);\n"
    '- arithmetic: {"expression": "..."} using only the numbers of the question '
    "(written as digits) and + - * / // % ** and brackets;\n"
    '- date: {"start": "YYYY-MM-DD", "add_days": N} or {"start": ..., "end": ...} (days '
    'between) or {"start": ..., "ask": "weekday"};\n'
    '- family "free" with an empty spec when no program can derive the answer.'
)

_ANSWER = re.compile(r"^[\s>*_#-]*(?:final\s+)?answer\s*[:=]\s*(.+?)\s*$", re.I | re.M)
_UNIT = re.compile(r"^(-?[\d.,]+(?:/\d+)?)\s*[a-z%$°]*$")
_DATE_FORMATS = ("%Y-%m-%d", "%B %d %Y", "%d %B %Y", "%b %d %Y", "%d %b %Y")


class QATask(BaseModel):
    """A question with its answer and, for solvable families, the spec it derives from."""

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    family: Family = "free"
    spec: dict[str, Any] = Field(default_factory=dict)
    difficulty: int = 1
    weakness: str = ""
    provenance: dict[str, Any] = Field(default_factory=dict)

    def normal(self) -> Task:
        data = self.model_dump(mode="json")
        if not data["id"]:
            data["id"] = content_id(self.question, prefix="qa")
        return data


class GeneratedQATask(BaseModel):
    """What the generator returns for one question."""

    question: str = Field(description="The question, self-contained, with one correct answer.")
    answer: str = Field(description="The correct answer, short.")
    family: str = Field(description="ordering, arithmetic, date or free.")
    spec: dict[str, Any] = Field(default_factory=dict, description="See the system message.")
    weakness: str = Field(default="", description="The weakness this question targets.")


def final_answers(text: str) -> list[str]:
    """The ``ANSWER:`` lines of a reply, in order; the last non-empty line if none."""
    found = [m.strip().strip("`") for m in _ANSWER.findall(text)]
    if found:
        return found
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1:] if lines else []


def finals_of(answer: Any) -> list[str]:
    """The final answers of a solver's answer: ``{"final_answers": [...]}``, or the older
    form, one a line in a string; anything else has none."""
    if isinstance(answer, Mapping):
        items = answer.get("final_answers")
        finals = [str(a) for a in items] if isinstance(items, list) else []
    elif isinstance(answer, str):
        finals = answer.splitlines()
    else:
        finals = []
    return [a.strip() for a in finals if a.strip()]


def canonical(answer: str) -> str:
    """An answer in comparable form: ``normalize_answer`` plus numbers (with one trailing
    unit word, fractions) as exact rationals and dates in ISO form."""
    text = normalize_answer(answer)
    unit = _UNIT.match(text)
    if unit:
        number = unit.group(1).replace(",", "")
        try:
            value = Fraction(number)
        except (ValueError, ZeroDivisionError):
            pass
        else:
            return f"#{value.limit_denominator(10**6)}"
    cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text.replace(",", " "))
    cleaned = " ".join(cleaned.split())
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(cleaned, fmt).date().isoformat()
        except ValueError:
            continue
    return text


def same_answer(a: str, b: str) -> bool:
    """Whether two final answers are the same answer."""
    return canonical(a) == canonical(b)


class QADomain(BaseDomain):
    """Reasoning QA: exact answers, re-derived by code where a family has a solver,
    k-of-n checker consensus always.

    ``n_checkers`` independent checker answers per generated task; a task needs a
    majority of them on its answer. ``limits`` bound the sandbox run of a derivation.
    """

    name = "qa"
    max_difficulty = 5
    generated_schema: type[BaseModel] = GeneratedQATask
    default_prompt = DEFAULT_PROMPT
    checker_prompt = "You are an independent checker. Solve the question carefully."
    hidden_fields = ("answer", "spec", "family")

    def __init__(self, *, n_checkers: int = 3, limits: Limits | None = None) -> None:
        if n_checkers < 1:
            raise ConfigurationError(f"n_checkers must be >= 1, got {n_checkers}")
        self.n_checkers = n_checkers
        self.limits = limits or Limits(timeout_s=10.0, memory_mb=256)

    def _load(self, name: str) -> list[Task]:
        text = files("sipdo.plugins.domains").joinpath(name).read_text("utf-8")
        return [self.validate_task(json.loads(line)) for line in text.splitlines() if line.strip()]

    def seed_tasks(self) -> list[Task]:
        """The shipped seed questions (``qa_seeds.jsonl``)."""
        return self._load("qa_seeds.jsonl")

    def heldout_tasks(self) -> list[Task]:
        """Held-out questions of the same families (``qa_heldout.jsonl``), for evaluation
        only: never seeds."""
        return self._load("qa_heldout.jsonl")

    def validate_task(self, data: Mapping[str, Any]) -> Task:
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"a qa task must be an object, got {type(data).__name__}")
        try:
            task = QATask.model_validate(dict(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "<task>"
            raise ConfigurationError(f"invalid qa task ({where}): {first['msg']}") from exc
        return task.normal()

    def task_from_generated(
        self, generated: BaseModel, *, difficulty: int, weakness: str, provenance: Mapping[str, Any]
    ) -> Task:
        gen = GeneratedQATask.model_validate(generated.model_dump())
        family = gen.family.strip().lower()
        if family not in ("ordering", "arithmetic", "date", "free"):
            raise ValueError(f"unknown family {gen.family!r} (ordering, arithmetic, date, free)")
        if not gen.answer.strip():
            raise ValueError("the question has no answer")
        if not gen.question.strip():
            raise ValueError("the question is empty")
        return QATask(
            question=gen.question.strip(),
            answer=gen.answer.strip(),
            family=family,
            spec=gen.spec,
            difficulty=difficulty,
            weakness=gen.weakness.strip() or weakness,
            provenance=dict(provenance),
        ).normal()

    def dedup_key(self, task: Task) -> str:
        raw = " ".join(str(task.get("question", "")).casefold().split())
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]

    def solve_messages(self, task: Task, system_prompt: str) -> list[BaseMessage]:
        return system_and_user(system_prompt, f"Question: {task['question']}\n\n{FORMAT}")

    def parse_answer(self, task: Task, text: str) -> Answer:
        """``{"final_answers": [...]}``: every final answer the reply gives (graded:
        exactly one)."""
        return {"final_answers": final_answers(text)}

    def generate_messages(
        self,
        *,
        target: Mapping[str, Any] | None,
        difficulty: int,
        examples: Sequence[Task],
        rejections: Sequence[str] = (),
    ) -> list[BaseMessage]:
        if target is None:
            aim = "The solver answered everything so far: write a harder question."
        else:
            task = target.get("task") or {}
            aim = (
                f"The solver got this question wrong:\n{task.get('question')}\n"
                f"It answered {' / '.join(finals_of(target.get('answer', '')))[:200]!r}; the "
                f"answer is "
                f"{task.get('answer')!r}.\nWrite a NEW question (other names, numbers or "
                "dates) that tests the same weakness."
            )
        if rejections:
            aim += "\n\nRecent questions were rejected by the verifier; avoid these problems:\n"
            aim += "\n".join(f"- {r[:300]}" for r in rejections)
        example = next(iter(examples), None)
        shown = ""
        if example is not None:
            fields = {k: example[k] for k in GeneratedQATask.model_fields if k in example}
            shown = f"\n\nA finished question (do not copy it):\n{json.dumps(fields)}"
        return system_and_user(
            GENERATOR_SYSTEM,
            f"{aim}\n\nDifficulty: {difficulty} on a 1-{self.max_difficulty} scale (more "
            f"steps, more distractors, more names).{shown}",
        )

    def describe_failure(self, failure: Mapping[str, Any]) -> str:
        task = failure.get("task") or {}
        verdict = failure.get("verdict") or {}
        return (
            f"Question {task.get('id')} (weakness: {task.get('weakness') or 'unknown'}):\n"
            f"{task.get('question')}\nSolver's final answers: "
            f"{' / '.join(finals_of(failure.get('answer', '')))[:300] or '(none)'}\n"
            f"Verifier feedback: {str(verdict.get('feedback', ''))[:600]}"
        )

    async def derive(self, task: Task, *, sandbox: SandboxProvider) -> dict[str, Any]:
        """Re-derive the answer from the spec in the sandbox: ``{"ok", "answer" | "reason"}``."""
        nonce = secrets.token_hex(16)
        request = {
            "nonce": nonce,
            "family": task.get("family"),
            "spec": task.get("spec", {}),
            "question": task.get("question", ""),
        }
        source = files("sipdo.plugins.domains").joinpath("qasolve.py").read_text("utf-8")
        box = await sandbox.get()
        result = await box.arun(
            {"qasolve.py": source},
            ["python", "qasolve.py"],
            stdin=json.dumps(request),
            limits=self.limits,
        )
        for line in result.stdout.splitlines():
            if line.startswith(nonce + " "):
                found: dict[str, Any] = json.loads(line[len(nonce) + 1 :])
                return found
        if result.timed_out or result.oom_killed:
            why = "timed out" if result.timed_out else "ran out of memory"
            return {"ok": False, "reason": f"the derivation {why}"}
        raise VerificationError(
            f"the qa solver gave no result (exit {result.exit_code}): {result.stderr[-600:]}"
        )

    async def averify_task(
        self,
        task: Task,
        *,
        checker_answer: Answer | None,
        sandbox: SandboxProvider,
        checker_answers: Sequence[Answer] = (),
    ) -> Verdict:
        """Sound when the derived answer (free questions: the generator's) is the
        generator's, and a majority of the checkers reach it."""
        answers = list(checker_answers) or ([checker_answer] if checker_answer else [])
        checks: list[Check] = []
        expected = str(task["answer"])
        if task.get("family", "free") != "free":
            derived = await self.derive(task, sandbox=sandbox)
            if not derived.get("ok"):
                reason = str(derived.get("reason"))
                checks.append(Check(name="derivation", passed=False, detail=reason))
                return Verdict(passed=False, score=0.0, feedback=reason, checks=checks)
            agree = same_answer(str(derived["answer"]), expected)
            checks.append(
                Check(
                    name="derivation",
                    passed=agree,
                    score=float(agree),
                    detail=f"derived {derived['answer']!r}",
                )
            )
            if not agree:
                feedback = (
                    f"the generator's answer {expected!r} differs from the answer derived "
                    f"from its spec, {derived['answer']!r}"
                )
                return Verdict(passed=False, score=0.0, feedback=feedback, checks=checks)
        single = [finals_of(a) for a in answers]
        votes = sum(len(a) == 1 and same_answer(a[0], expected) for a in single)
        need = len(answers) // 2 + 1
        ok = bool(answers) and votes >= need
        checks.append(
            Check(
                name="consensus",
                passed=ok,
                score=votes / max(1, len(answers)),
                detail=f"{votes} of {len(answers)} checkers answer {expected!r}",
            )
        )
        if not ok:
            given = ", ".join(repr(" / ".join(a)) for a in single) or "none"
            feedback = (
                f"ambiguous or wrong: only {votes} of {len(answers)} independent checkers "
                f"answer {expected!r} (they answered {given})"
            )
            return Verdict(passed=False, score=0.0, feedback=feedback, checks=checks)
        return Verdict(passed=True, score=1.0, feedback="verified question", checks=checks)

    async def averify_answer(
        self, task: Task, answer: Answer, *, sandbox: SandboxProvider
    ) -> Verdict:
        """Exactly one final answer, equal to the task's after normalization."""
        given = finals_of(answer)
        expected = str(task["answer"])
        if not given:
            feedback = "no final answer: end with a line `ANSWER: <answer>`"
            return Verdict(passed=False, score=0.0, feedback=feedback)
        if len({canonical(a) for a in given}) > 1:
            feedback = f"several different final answers ({' / '.join(given)}): give exactly one"
            return Verdict(passed=False, score=0.0, feedback=feedback)
        ok = same_answer(given[-1], expected)
        check = Check(name="answer", passed=ok, score=float(ok), detail=f"normalized {given[-1]!r}")
        if ok:
            return Verdict(passed=True, score=1.0, feedback="correct", checks=[check])
        feedback = f"wrong answer {given[-1]!r}; the question has one exact answer"
        return Verdict(passed=False, score=0.0, feedback=feedback, checks=[check])
