"""The built-in ``plan`` domain: agent plans verified by running them in simulated worlds.

A task is a question for a research agent, the tools it may call and the
worlds it may meet (search results empty, weak, contradictory, stale or
misleading; tools that fail, time out or return malformed data). The learner
writes a plan in a small Python-like language; the verifier runs it in the
sandbox against hand-picked and Hypothesis-generated worlds (``plansim``) and
checks the goal and the invariants every good plan keeps. A failing plan gets
the shrunk counterexample world and the trace of what it did as feedback.
The plan is interpreted, never executed as Python, and judged from what the
simulated tools returned, so a plan cannot claim a result it did not get.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from importlib.resources import files
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sipdo.errors import ConfigurationError, VerificationError
from sipdo.plugins.domains import plansim
from sipdo.plugins.domains.base import (
    Answer,
    Ask,
    BaseDomain,
    SandboxProvider,
    Task,
    answer_text,
    system_and_user,
)
from sipdo.pycode import fenced_blocks
from sipdo.sandbox import Limits
from sipdo.verifiers.types import Check, Verdict, content_id

DEFAULT_PROMPT = (
    "You plan the tool calls of a research agent that answers questions. "
    "Plan: search for the question, summarize the top result, answer."
)

NAIVE_PLAN = """s = search(question)
d = fetch(s.first)
answer(d.claim)
"""

LANGUAGE = """Write the plan in this language (a small subset of Python, nothing else):
- `x = tool(arg)` calls a declared tool; `question` holds the user's question.
- search(query) -> results: `.results` (a list), `.first`, `.second`, `.third`
- fetch(result) -> document: `.claim` (what it says the answer is), `.source`
- summarize(document) -> summary: `.claim`
- check_source(document) -> "reliable", "unreliable" or "stale"
- verify_claim(claim) -> "supported", "refuted" or "unknown"
- `if` / `elif` / `else`, `for r in s.results:` with `break` / `continue`,
  `==`, `!=`, `and`, `or`, `not`; `failed(x)` is true when the call that made x
  failed (error, timeout, malformed reply), `empty(x)` when a list has no items.
- The plan ends with `answer(x)` (x must come from a tool) or `abstain("reason")`.
- Write the statements at top level: no `def`, no `return`, no `import`, no `print`.
Any tool may fail; sources may be unreliable, stale or wrong."""

GENERATOR_SYSTEM = (
    "You write tasks for testing the plans of a tool-using research agent. A task is a "
    "question, the tools the agent may use, the kinds of trouble its simulated world may "
    "hold, a budget, and a correct reference plan in the plan language. The verifier runs "
    "plans in many generated worlds: the reference plan must hold in all of them, and a "
    "naive plan (search, fetch the first result, answer its claim) must fail in some."
)


class PlanTask(BaseModel):
    """A plan task: the question, the declared tools, the world's constraints, the
    properties a plan must hold, and the hidden truth and reference plan."""

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    question: str = Field(min_length=1)
    goal: str = "Answer the question with a claim you verified, or abstain."
    tools: list[str] = Field(default_factory=lambda: list(plansim.TOOLS))
    failure_modes: list[str] = Field(default_factory=lambda: list(plansim.FAILURE_MODES))
    max_results: int = Field(default=3, ge=1, le=5)
    max_steps: int = Field(default=12, ge=1, le=40)
    max_cost: int = Field(default=16, ge=1, le=60)
    answer_when: Literal["first_good", "any_good"] = "first_good"
    properties: list[str] = Field(default_factory=lambda: list(plansim.PROPERTIES))
    truth: str = Field(min_length=1)
    distractors: list[str] = Field(default_factory=lambda: ["an outdated figure"])
    reference_plan: str = Field(min_length=1)
    difficulty: int = 1
    weakness: str = ""
    provenance: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, tools: list[str]) -> list[str]:
        unknown = sorted(set(tools) - set(plansim.TOOLS))
        if unknown:
            raise ValueError(f"unknown tools {unknown}; known: {sorted(plansim.TOOLS)}")
        if not {"search", "fetch"} <= set(tools):
            raise ValueError("a plan task needs at least the search and fetch tools")
        return list(dict.fromkeys(tools))

    @field_validator("failure_modes")
    @classmethod
    def _known_modes(cls, modes: list[str]) -> list[str]:
        unknown = sorted(set(modes) - set(plansim.FAILURE_MODES))
        if unknown:
            raise ValueError(f"unknown failure modes {unknown}; known: {plansim.FAILURE_MODES}")
        return list(dict.fromkeys(modes))

    @field_validator("properties")
    @classmethod
    def _known_properties(cls, props: list[str]) -> list[str]:
        unknown = sorted(set(props) - set(plansim.PROPERTIES))
        if unknown:
            raise ValueError(f"unknown properties {unknown}; known: {plansim.PROPERTIES}")
        return list(dict.fromkeys(props)) or list(plansim.PROPERTIES)

    def normal(self) -> Task:
        """The task as the JSON dict the graph carries (with ``scenario`` for ``plansim``)."""
        data = self.model_dump(mode="json")
        if not data["id"]:
            data["id"] = content_id(
                self.question, json.dumps(self.world(), sort_keys=True), prefix="plan"
            )
        data["scenario"] = self.world()
        return data

    def world(self) -> dict[str, Any]:
        return {
            "failure_modes": self.failure_modes,
            "max_results": self.max_results,
            "max_steps": self.max_steps,
            "max_cost": self.max_cost,
            "answer_when": self.answer_when,
        }


class GeneratedPlanTask(BaseModel):
    """What the generator returns for one plan task."""

    question: str = Field(description="The user's question the agent must answer.")
    truth: str = Field(description="The true answer (the simulated world's ground truth).")
    distractors: list[str] = Field(description="Plausible wrong answers misleading sources give.")
    tools: list[str] = Field(description=f"Declared tools, from {sorted(plansim.TOOLS)}.")
    failure_modes: list[str] = Field(
        description=f"Trouble the world may hold, from {list(plansim.FAILURE_MODES)}."
    )
    max_results: int = Field(default=3, description="Most search results (1-5).")
    max_steps: int = Field(default=12, description="Most tool calls a plan may make.")
    max_cost: int = Field(default=16, description="Most cost (search 2, other tools 1).")
    answer_when: str = Field(
        default="first_good",
        description="'first_good': must answer when the first result is good; "
        "'any_good': when any of the first three is.",
    )
    reference_plan: str = Field(description="A correct plan in the plan language.")
    weakness: str = Field(default="", description="The weakness this task targets.")


def plan_problem(plan: str, task: Mapping[str, Any]) -> str | None:
    """Why ``plan`` is not a valid plan for ``task`` (the parser's error), or None."""
    try:
        plansim.parse_plan(plan, list(task.get("tools") or plansim.TOOLS))
    except plansim.PlanError as exc:
        return str(exc)
    return None


def retry_request(problem: str) -> str:
    """What a solver whose plan does not parse is told."""
    return (
        f"That plan cannot run: {problem}.\n"
        "Rewrite it in the plan language: statements at top level (no def, no return), "
        "`x = tool(arg)` calls, `if failed(x):` / `if empty(x.results):` tests, fields like "
        '`s.first` and `d.claim`, ending with answer(x) or abstain("reason"). '
        "Reply with the whole corrected plan in one ```python block."
    )


def parse_plan_reply(text: str) -> str:
    """The plan inside a reply: the last fenced block that mentions a tool call, else
    the whole reply."""
    blocks = [body for _, body in fenced_blocks(text)]
    for body in reversed(blocks):
        if "(" in body:
            return body.strip() + "\n"
    return text.strip() + "\n"


class PlanDomain(BaseDomain):
    """Agent plans, verified by execution in simulated tool worlds in the sandbox.

    ``max_examples`` is how many Hypothesis worlds a plan meets after the
    hand-picked ones (each plan run is microseconds; the count bounds shrinking
    time too). ``limits`` bound the executor's sandbox run.
    """

    name = "plan"
    max_difficulty = 5
    generated_schema: type[BaseModel] = GeneratedPlanTask
    default_prompt = DEFAULT_PROMPT
    checker_prompt = (
        "You are an independent checker. Write a plan that reaches the goal in every "
        "world the task allows, checking each tool's result before using it."
    )
    hidden_fields = ("truth", "distractors", "reference_plan")

    def __init__(
        self, *, max_examples: int = 60, limits: Limits | None = None, plan_retries: int = 1
    ) -> None:
        if max_examples < 1:
            raise ConfigurationError(f"max_examples must be >= 1, got {max_examples}")
        if plan_retries < 0:
            raise ConfigurationError(f"plan_retries must be >= 0, got {plan_retries}")
        self.max_examples = max_examples
        self.limits = limits or Limits(timeout_s=60.0, memory_mb=512)
        self.plan_retries = plan_retries

    def seed_tasks(self) -> list[Task]:
        """The shipped seed tasks (``plan_seeds.jsonl``)."""
        text = files("sipdo.plugins.domains").joinpath("plan_seeds.jsonl").read_text("utf-8")
        return [self.validate_task(json.loads(line)) for line in text.splitlines() if line.strip()]

    def validate_task(self, data: Mapping[str, Any]) -> Task:
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"a plan task must be an object, got {type(data).__name__}")
        fields = {k: v for k, v in data.items() if k != "scenario"}
        try:
            task = PlanTask.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "<task>"
            raise ConfigurationError(f"invalid plan task ({where}): {first['msg']}") from exc
        try:
            plansim.parse_plan(task.reference_plan, task.tools)
        except plansim.PlanError as exc:
            raise ConfigurationError(f"invalid plan task (reference_plan): {exc}") from exc
        return task.normal()

    def task_from_generated(
        self, generated: BaseModel, *, difficulty: int, weakness: str, provenance: Mapping[str, Any]
    ) -> Task:
        """A plan task; ``ValueError`` for unknown tools or modes or a plan that does not
        parse."""
        gen = GeneratedPlanTask.model_validate(generated.model_dump())
        try:
            task = PlanTask(
                question=gen.question,
                truth=gen.truth,
                distractors=gen.distractors,
                tools=gen.tools,
                failure_modes=gen.failure_modes,
                max_results=gen.max_results,
                max_steps=gen.max_steps,
                max_cost=gen.max_cost,
                answer_when=gen.answer_when,
                reference_plan=parse_plan_reply(gen.reference_plan),
                difficulty=difficulty,
                weakness=gen.weakness.strip() or weakness,
                provenance=dict(provenance),
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        if task.truth in task.distractors:
            raise ValueError("the truth is listed among the distractors")
        try:
            plansim.parse_plan(task.reference_plan, task.tools)
        except plansim.PlanError as exc:
            raise ValueError(f"the reference plan is not a valid plan: {exc}") from None
        return task.normal()

    def dedup_key(self, task: Task) -> str:
        raw = json.dumps(
            [" ".join(str(task.get("question", "")).casefold().split()), task.get("scenario")],
            sort_keys=True,
        )
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]

    def statement(self, task: Task) -> str:
        """What a solver sees: question, goal, tools, the world's trouble, budget."""
        world = task.get("scenario", {})
        tools = "\n".join(f"- {plansim.TOOLS[t]}" for t in task.get("tools", []))
        when = (
            "the first search result is reliable, current and true"
            if world.get("answer_when", "first_good") == "first_good"
            else "any of the first three results is reliable, current and true"
        )
        return (
            f"Question: {task.get('question')}\nGoal: {task.get('goal')}\n"
            f"Declared tools:\n{tools}\n"
            f"The world may hold: {', '.join(world.get('failure_modes', [])) or 'nothing bad'}.\n"
            f"Budget: at most {world.get('max_steps')} tool calls and cost "
            f"{world.get('max_cost')} (search costs 2, other tools 1); at most "
            f"{world.get('max_results')} search results.\n"
            f"The plan must answer when {when}; it must never answer a wrong or unchecked "
            "claim (abstain instead)."
        )

    def solve_messages(self, task: Task, system_prompt: str) -> list[BaseMessage]:
        return system_and_user(
            system_prompt,
            f"{self.statement(self.blind(task))}\n\n{LANGUAGE}\n\n"
            "Reply with the plan in one ```python block.",
        )

    def parse_answer(self, task: Task, text: str) -> str:
        return parse_plan_reply(text)

    async def asolve(self, task: Task, system_prompt: str, ask: Ask) -> Answer:
        """The plan; a plan that does not parse is sent back with the parser's error (what
        line, what to write instead) up to ``plan_retries`` times, every call counted.
        The last plan is the answer whether it parses or not (the verifier then fails
        it with the same error)."""
        return await self._plan_with_retries(task, self.solve_messages(task, system_prompt), ask)

    async def acheck(self, task: Task, ask: Ask) -> Answer:
        """The checker's plan, blind, with the same parse-error retries as the learner's:
        a checker plan that fails only to parse says nothing about the task."""
        return await self._plan_with_retries(task, self.checker_messages(task), ask)

    async def _plan_with_retries(self, task: Task, messages: list[BaseMessage], ask: Ask) -> str:
        reply = await ask(messages)
        plan = parse_plan_reply(reply)
        for _ in range(self.plan_retries):
            problem = plan_problem(plan, task)
            if problem is None:
                break
            messages = [
                *messages,
                AIMessage(content=reply),
                HumanMessage(content=retry_request(problem)),
            ]
            reply = await ask(messages)
            plan = parse_plan_reply(reply)
        return plan

    def generate_messages(
        self,
        *,
        target: Mapping[str, Any] | None,
        difficulty: int,
        examples: Sequence[Task],
        rejections: Sequence[str] = (),
    ) -> list[BaseMessage]:
        if target is None:
            aim = "The agent's plans held in every world so far: write a harder task."
        else:
            task = target.get("task") or {}
            feedback = str((target.get("verdict") or {}).get("feedback", ""))[:700]
            aim = (
                f"The agent's plan failed a task on this weakness: "
                f"{task.get('weakness') or 'see below'}.\nWhat went wrong: {feedback}\n\n"
                "Write a NEW task (another question) that tests the same weakness in "
                "another setting."
            )
        if rejections:
            aim += "\n\nRecent tasks were rejected by the verifier; avoid these problems:\n"
            aim += "\n".join(f"- {r[:300]}" for r in rejections)
        example = next(iter(examples), None)
        shown = ""
        if example is not None:
            fields = {k: example[k] for k in GeneratedPlanTask.model_fields if k in example}
            shown = f"\n\nA finished task (do not copy it):\n{json.dumps(fields, indent=1)}"
        return system_and_user(
            GENERATOR_SYSTEM,
            f"{aim}\n\nDifficulty: {difficulty} on a 1-{self.max_difficulty} scale: harder "
            "means more kinds of trouble, tighter budgets, answering from any good result.\n\n"
            f"{LANGUAGE}{shown}",
        )

    def describe_failure(self, failure: Mapping[str, Any]) -> str:
        task = failure.get("task") or {}
        verdict = failure.get("verdict") or {}
        return (
            f"Task {task.get('id')} (weakness: {task.get('weakness') or 'unknown'}):\n"
            f"{self.statement(self.blind(task))}\nThe agent's plan:\n"
            f"{answer_text(failure.get('answer', ''))[:1200]}\n"
            f"Verifier feedback: {str(verdict.get('feedback', ''))[:900]}"
        )

    async def check_plans(
        self, task: Task, plans: Sequence[str], *, sandbox: SandboxProvider
    ) -> list[dict[str, Any]]:
        """Run ``plansim`` on ``plans`` in one sandbox run: one result per plan."""
        nonce = secrets.token_hex(16)
        request = {
            "nonce": nonce,
            "task": task,
            "plans": list(plans),
            "max_examples": self.max_examples,
        }
        source = files("sipdo.plugins.domains").joinpath("plansim.py").read_text("utf-8")
        box = await sandbox.get()
        result = await box.arun(
            {"plansim.py": source},
            ["python", "plansim.py"],
            stdin=json.dumps(request),
            limits=self.limits,
        )
        found = [
            json.loads(line[len(nonce) + 1 :])
            for line in result.stdout.splitlines()
            if line.startswith(nonce + " ")
        ]
        if len(found) != len(plans):
            if result.timed_out:
                raise VerificationError(
                    f"the plan executor timed out after {self.limits.timeout_s} s"
                )
            raise VerificationError(
                f"the plan executor returned {len(found)} of {len(plans)} results "
                f"(exit {result.exit_code}): {result.stderr[-800:]}"
            )
        return found

    async def averify_answer(
        self, task: Task, answer: Answer, *, sandbox: SandboxProvider
    ) -> Verdict:
        (result,) = await self.check_plans(task, [answer_text(answer)], sandbox=sandbox)
        return plan_verdict(result)

    async def averify_task(
        self,
        task: Task,
        *,
        checker_answer: Answer | None,
        sandbox: SandboxProvider,
        checker_answers: Sequence[Answer] = (),
    ) -> Verdict:
        """Sound when the reference plan holds in every world (satisfiable), the naive
        plan fails in some (discriminating) and a checker's own plan holds (the task
        can be solved from its statement alone)."""
        given = list(checker_answers) or ([checker_answer] if checker_answer else [])
        checkers = [answer_text(a) for a in given]
        results = await self.check_plans(
            task, [task["reference_plan"], NAIVE_PLAN, *checkers], sandbox=sandbox
        )
        reference, naive, *checked = results
        checks = [
            Check(
                name="satisfiable",
                passed=bool(reference["passed"]),
                score=float(reference["passed"]),
                detail=_why(reference) or f"held in {reference['scenarios']} worlds",
            ),
            Check(
                name="discriminating",
                passed=not naive["passed"],
                score=float(not naive["passed"]),
                detail=_why(naive) or "the naive plan holds in every world",
            ),
        ]
        if checked:
            agree = sum(bool(c["passed"]) for c in checked)
            checks.append(
                Check(
                    name="consensus",
                    passed=agree > 0,
                    score=agree / len(checked),
                    detail=f"{agree} of {len(checked)} checker plans hold"
                    + (f"; first failure: {_why(checked[0])}" if agree == 0 else ""),
                )
            )
        failed = [c for c in checks if not c.passed]
        if not failed:
            return Verdict(passed=True, score=1.0, feedback="sound plan task", checks=checks)
        reasons = {
            "satisfiable": "the reference plan fails",
            "discriminating": "not discriminating: the naive plan holds in every world",
            "consensus": "no checker plan holds",
        }
        feedback = "; ".join(
            f"{reasons[c.name]}" + (f" ({c.detail})" if c.name == "satisfiable" else "")
            for c in failed
        )
        return Verdict(passed=False, score=0.0, feedback=feedback, checks=checks)


def _why(result: Mapping[str, Any]) -> str:
    if result.get("passed"):
        return ""
    text = "; ".join(result.get("violations", [])[:3])
    if result.get("explanation"):
        text += f". Counterexample {result['explanation']}"
    return text


def plan_verdict(result: Mapping[str, Any]) -> Verdict:
    """A ``Verdict`` from one ``plansim.check_plan`` result."""
    if result.get("passed"):
        return Verdict(
            passed=True,
            score=1.0,
            feedback=f"the plan held in all {result['scenarios']} worlds",
            checks=[Check(name="worlds", passed=True, score=1.0, detail=str(result["scenarios"]))],
        )
    violations = list(result.get("violations", []))
    names = sorted({v.split(":", 1)[0] for v in violations if result.get("parsed")})
    checks = [Check(name="parse", passed=bool(result.get("parsed")), detail="; ".join(violations))]
    checks += [Check(name=n, passed=False) for n in names]
    counter = result.get("counterexample")
    prefix = "" if result.get("parsed") else "the plan is not valid: "
    return Verdict(
        passed=False,
        score=0.0,
        feedback=prefix + _why(result),
        checks=checks,
        counterexample=json.dumps(counter, sort_keys=True) if counter is not None else None,
    )
