"""Verified demonstrations in the loop: filling the pool and showing them to the solver.

The pool (``state["demonstrations"]``) is filled by the learner node: every
verified training task on which the incumbent's answer passed the sandbox
verification gives one entry, unless the task is (or duplicates) a held-out
task. A candidate's ``demonstrations`` component names pool ids; ``with_turns``
puts them before the solver's task as earlier user/assistant exchanges, built
with the domain's own ``solve_messages`` (so any domain gets them) and never
showing the demonstration of the task being solved. Which ids a candidate may
carry is checked when a strategy proposes it (``sipdo.plugins.optimizers.demos.
refusals``); a refused candidate is never evaluated nor promoted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage

from sipdo.graph.state import DemonstrationState
from sipdo.plugins.domains.base import Domain
from sipdo.plugins.optimizers.candidates import demonstration_ids
from sipdo.plugins.optimizers.demos import REPLY_CHARS, demonstration
from sipdo.verifiers.types import content_id


def held_out_keys(domain: Domain, holdout: Any) -> frozenset[str]:
    """Ids and dedup keys of the held-out tasks (empty without a held-out set)."""
    if holdout is None:
        return frozenset()
    keys: set[str] = set()
    for task in holdout.tasks:
        data = task.model_dump(mode="json") if hasattr(task, "model_dump") else dict(task)
        keys.add(str(data.get("id", "")))
        try:
            keys.add(domain.dedup_key(domain.validate_task(data)))
        except Exception:  # a held-out task the domain cannot normalize: its raw key
            keys.add(domain.dedup_key(data))
    keys.discard("")
    return frozenset(keys)


def collect(
    domain: Domain,
    results: Iterable[Mapping[str, Any]],
    *,
    held_out: frozenset[str],
) -> dict[str, DemonstrationState]:
    """Pool entries from graded answers: passed, gradable, not a held-out task."""
    out: dict[str, DemonstrationState] = {}
    for result in results:
        task, verdict = result["task"], result["verdict"]
        reply = str(result.get("reply") or "")
        if not verdict.get("passed") or verdict.get("task_error") or not reply.strip():
            continue
        key = domain.dedup_key(task)
        if str(task["id"]) in held_out or key in held_out or len(reply) > REPLY_CHARS:
            continue
        shown = "\n".join(
            str(m.content) for m in domain.solve_messages(task, "") if not _is_system(m)
        )
        demo = demonstration(
            task, str(result.get("answer", "")), reply, shown=shown, source=str(result["cid"])
        )
        out[demo["id"]] = {**demo, "key": key}  # type: ignore[typeddict-item]
    return out


def of_candidate(
    candidate: Mapping[str, Any], pool: Mapping[str, DemonstrationState]
) -> list[DemonstrationState]:
    """The pool entries a candidate's ``demonstrations`` component names, in order."""
    return [pool[d] for d in demonstration_ids(candidate.get("components", {})) if d in pool]


def with_turns(
    domain: Domain,
    messages: Sequence[BaseMessage],
    demos: Sequence[Mapping[str, Any]],
    *,
    system_prompt: str,
    task: Mapping[str, Any],
) -> list[BaseMessage]:
    """``messages`` with the demonstrations as earlier turns after the system message(s).

    A demonstration of ``task`` itself is left out: it would hand the solver the answer.
    """
    lead = 0
    while lead < len(messages) and _is_system(messages[lead]):
        lead += 1
    turns: list[BaseMessage] = []
    for demo in demos:
        if demo["task_id"] == task.get("id"):
            continue
        shown = domain.solve_messages(demo["task"], system_prompt)
        turns += [m for m in shown if not _is_system(m)]
        turns.append(AIMessage(content=str(demo["reply"])))
    return [*messages[:lead], *turns, *messages[lead:]]


class Demonstrating:
    """``domain`` whose solver sees ``demos`` first: how a version with demonstrations is
    graded on held-out tasks by ``sipdo.evaluation`` (which asks ``solve_messages``).

    Its ``name`` carries the demonstrations' digest, so a stored held-out result of
    the same prompt text without them is never taken for this one's; ``grades_as``
    keeps the domain's own name, which decides how the tasks are graded (the code
    domain's ``CodeTask`` two ways).
    """

    def __init__(self, domain: Domain, demos: Sequence[Mapping[str, Any]]) -> None:
        self._domain = domain
        self._demos = list(demos)
        digest = content_id(*(str(d["id"]) for d in self._demos), prefix="demos")
        self.name = f"{domain.name}+{digest}"
        self.grades_as = domain.name

    def solve_messages(self, task: Mapping[str, Any], system_prompt: str) -> list[BaseMessage]:
        messages = self._domain.solve_messages(dict(task), system_prompt)
        return with_turns(
            self._domain, messages, self._demos, system_prompt=system_prompt, task=task
        )

    async def asolve(self, task: Any, system_prompt: str, ask: Any) -> Any:
        """The domain's own solving (one call or its multi-turn exchange), every call
        with the demonstrations before it: as the loop's learner sees them in training
        (``Deps.solve_and_grade``). Delegating ``asolve`` alone would build the inner
        domain's messages and show none."""

        async def shown(messages: Sequence[BaseMessage]) -> str:
            turns = with_turns(
                self._domain, messages, self._demos, system_prompt=system_prompt, task=task
            )
            return str(await ask(turns))

        return await self._domain.asolve(task, system_prompt, shown)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._domain, name)


def _is_system(message: BaseMessage) -> bool:
    return isinstance(message, SystemMessage)
