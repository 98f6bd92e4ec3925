"""What every node needs at run time: models per role, domain, strategy, sandbox, store.

Also the one shared step, ``solve_and_grade`` (a solver answers a task, the
domain grades it), used by the learner and by the optimizer's candidate check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langgraph.config import get_config
from pydantic import BaseModel

from sipdo.errors import ConfigurationError
from sipdo.graph.budget import Budget, usage_delta
from sipdo.graph.events import emit
from sipdo.graph.infra import WatchedProvider, patiently, sandbox_retry_policy
from sipdo.plugins.domains.base import Domain
from sipdo.plugins.optimizers.base import Strategy
from sipdo.plugins.optimizers.demos import DemoSettings
from sipdo.plugins.optimizers.gates import PromotionPolicy, StatisticalGate
from sipdo.retry import RetryPolicy
from sipdo.sandbox import Sandbox
from sipdo.structured import (
    CallStats,
    ReplyFormat,
    StructuredResult,
    ainvoke_structured,
    ainvoke_text,
)
from sipdo.verifiers.grading import Answer, LazySandbox, agrade_answer, agrade_task

__all__ = ["ROLES", "Deps", "LazySandbox", "Tally", "run_id"]

T = TypeVar("T", bound=BaseModel)

ROLES = ("learner", "generator", "checker", "optimizer")


@dataclass
class Tally:
    """Usage gathered during one node run; folded into ``budget_used`` when it ends."""

    per_role: dict[str, CallStats] = field(default_factory=dict)
    sandbox_seconds: float = 0.0

    def add(self, role: str, stats: CallStats) -> None:
        self.per_role[role] = self.per_role.get(role, CallStats()) + stats

    def add_sandbox(self, seconds: float) -> None:
        self.sandbox_seconds += seconds


@dataclass
class Deps:
    """Everything the nodes share; built once by ``create_sipdo_graph``."""

    models: dict[str, BaseChatModel]
    domain: Domain
    strategy: Strategy
    sandbox: LazySandbox
    budget: Budget
    run_store: Any = None
    approve_prompts: bool = False
    retries: int = 2
    gate: PromotionPolicy = field(default_factory=lambda: StatisticalGate())
    seed: int = 0
    allow_specific: bool = False
    holdout: Any = None  # a sipdo.graph.holdout.Holdout, or None
    prompt_model: Any = None  # a sipdo.trprompt.PromptModel: writes the learner's prompt per task
    sandbox_retry: RetryPolicy = field(default_factory=sandbox_retry_policy)
    demos: DemoSettings = field(default_factory=DemoSettings)

    def __post_init__(self) -> None:
        self._watched = WatchedProvider(self.sandbox)
        self._held_out: frozenset[str] | None = None

    @property
    def held_out(self) -> frozenset[str]:
        """Ids and dedup keys of the held-out tasks (what no demonstration may show)."""
        if self._held_out is None:
            from sipdo.graph.demonstrations import held_out_keys

            self._held_out = held_out_keys(self.domain, self.holdout)
        return self._held_out

    async def watched_sandbox(self) -> Sandbox:
        """The run's sandbox, its runs watched for engine trouble (``sipdo.graph.infra``)."""
        return await self._watched.get()

    @property
    def stochastic(self) -> bool:
        """Whether the learner samples (temperature above 0): then promotion policies may
        ask for a second sample where candidate and incumbent differ."""
        temperature = getattr(self.models["learner"], "temperature", None)
        return isinstance(temperature, int | float) and temperature > 0

    async def structured(
        self,
        tally: Tally,
        role: str,
        messages: Sequence[BaseMessage],
        schema: type[T] | ReplyFormat[T],
    ) -> StructuredResult[T]:
        emit("model_call", role=role, phase="start")
        result = await ainvoke_structured(self.models[role], messages, schema, retries=self.retries)
        tally.add(role, result.stats)
        _call_ended(role, result.stats, ok=result.ok)
        return result

    async def text(self, tally: Tally, role: str, messages: Sequence[BaseMessage]) -> str:
        emit("model_call", role=role, phase="start")
        result = await ainvoke_text(self.models[role], messages)
        tally.add(role, result.stats)
        _call_ended(role, result.stats, ok=bool(result.text.strip()))
        return result.text

    async def verify_task(
        self, tally: Tally, task: dict[str, Any], checker_answers: Sequence[Answer]
    ) -> dict[str, Any]:
        """The domain's verdict on a generated task (``sipdo.verifiers.grading`` rules);
        sandbox engine trouble is waited out (``sipdo.graph.infra``)."""
        return await patiently(
            lambda: agrade_task(self.domain, task, checker_answers, sandbox=self._watched),
            self.sandbox_retry,
            spent=tally.add_sandbox,
        )

    async def verify_answer(
        self, tally: Tally, task: dict[str, Any], answer: Answer
    ) -> dict[str, Any]:
        """The domain's verdict on an answer (``sipdo.verifiers.grading`` rules);
        sandbox engine trouble is waited out (``sipdo.graph.infra``)."""
        return await patiently(
            lambda: agrade_answer(self.domain, task, answer, sandbox=self._watched),
            self.sandbox_retry,
            spent=tally.add_sandbox,
        )

    async def solve_and_grade(
        self,
        tally: Tally,
        task: dict[str, Any],
        prompt: str,
        role: str = "learner",
        demos: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """``{"task", "answer", "verdict", "reply"}``: the ``role`` model answers under
        ``prompt``, after ``demos`` shown as earlier turns (``reply`` is its last reply);
        with a prompt model, the learner answers under the prompt it writes for the task,
        conditioned on ``prompt`` as the general instructions."""
        from sipdo.graph.demonstrations import with_turns

        if role == "learner" and self.prompt_model is not None:
            prompt = await self.written_prompt(tally, task, prompt)
        replies: list[str] = []

        async def ask(messages: Sequence[BaseMessage]) -> str:
            if demos:
                messages = with_turns(self.domain, messages, demos, system_prompt=prompt, task=task)
            reply = await self.text(tally, role, messages)
            replies.append(reply)
            return reply

        answer = await self.domain.asolve(task, prompt, ask)
        verdict = await self.verify_answer(tally, task, answer)
        reply = replies[-1] if replies else ""
        return {"task": task, "answer": answer, "verdict": verdict, "reply": reply}

    async def written_prompt(self, tally: Tally, task: dict[str, Any], instructions: str) -> str:
        """The prompt model's prompt for ``task``; a generation (not a cache hit) counts as a
        call of the ``prompt_model`` role."""
        written = await self.prompt_model.acompose_task(task, instructions)
        if written.stats is not None:
            emit("model_call", role="prompt_model", phase="start")
            tally.add("prompt_model", written.stats)
            _call_ended("prompt_model", written.stats, ok=True)
        return str(written.prompt)

    def _model_name(self, role: str) -> str:
        if role not in self.models:
            return str(getattr(self.prompt_model, "name", role))
        model = self.models[role]
        return str(getattr(model, "model_name", None) or model.name or type(model).__name__)

    def fold(self, state: Mapping[str, Any], tally: Tally, node: str) -> dict[str, Any]:
        """The node's usage as a ``budget_used`` delta (the state's reducer adds it up);
        reports it to the run store once per node step (the call id is stable if a
        resumed run repeats the step)."""
        flow = state.get("flow") or {}
        step = f"{node}:{state.get('iteration', 0)}:{len(state.get('history', []))}"
        step += f":{state.get('step', 0)}:{len(flow.get('journal', []))}"
        for role, stats in tally.per_role.items():
            self.record(
                "record_usage",
                role=role,
                model=self._model_name(role),
                calls=stats.calls,
                input_tokens=stats.input_tokens,
                output_tokens=stats.output_tokens,
                latency_s=stats.latency_s,
                call_id=f"{step}:{role}",
            )
        return usage_delta(tally.per_role, tally.sandbox_seconds)

    def record(self, method: str, **kwargs: Any) -> None:
        """Call ``run_store.<method>(run_id, **kwargs)`` when a run store is attached."""
        if self.run_store is None:
            return
        getattr(self.run_store, method)(run_id(), **kwargs)


def _call_ended(role: str, stats: CallStats, *, ok: bool) -> None:
    emit(
        "model_call",
        role=role,
        phase="end",
        calls=stats.calls,
        output_tokens=stats.output_tokens,
        seconds=round(stats.latency_s, 2),
        wait_seconds=round(stats.wait_s, 2),
        ok=ok,
    )


def run_id() -> str:
    """The run id: ``configurable.run_id``, else the checkpointer's ``thread_id``."""
    configurable = get_config().get("configurable", {})
    found = configurable.get("run_id") or configurable.get("thread_id")
    if not found:
        raise ConfigurationError(
            "a run store needs config['configurable']['run_id'] or ['thread_id']"
        )
    return str(found)
