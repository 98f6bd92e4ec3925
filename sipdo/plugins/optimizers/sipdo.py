"""The built-in ``sipdo`` strategy: error analysis -> recommendation -> refinement."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from sipdo.plugins.optimizers.base import (
    Ask,
    Evaluate,
    OptimizerView,
    Selection,
    Strategy,
    StrategyFlow,
)
from sipdo.plugins.optimizers.candidates import INSTRUCTIONS, NewCandidate
from sipdo.plugins.optimizers.lesson import appended_rule
from sipdo.plugins.optimizers.scores import value
from sipdo.structured import ReplyFormat, parse_structured

OPTIMIZER_SYSTEM = (
    "You improve the system prompt of a solver model. You see the tasks it failed, its "
    "answers and the verifier's feedback. Be concrete and general: fix the failure modes "
    "without overfitting to one task, and never drop instructions that already work."
)


class FailureMode(BaseModel):
    """One pattern behind several failures."""

    pattern: str
    cause: str = ""
    task_ids: list[str] = Field(default_factory=list)


class ErrorAnalysis(BaseModel):
    """Step 1: why the solver failed."""

    failure_modes: list[FailureMode] = Field(min_length=1)
    summary: str = ""


class Recommendation(BaseModel):
    """Step 2: what the prompt should say differently."""

    recommendations: list[str] = Field(min_length=1)


class Refinement(BaseModel):
    """Step 3: the rewritten prompt."""

    prompt: str = Field(min_length=1)
    rationale: str = ""


_TAGGED = re.compile(r"<prompt>\s*(.*?)\s*</prompt>", re.DOTALL | re.IGNORECASE)
_OPENED = re.compile(r"<prompt>\s*(.*)", re.DOTALL | re.IGNORECASE)
_RATIONALE = re.compile(r"^\W*rationale\W*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)


def parse_refinement(text: str) -> Refinement:
    """The new prompt between ``<prompt>`` and ``</prompt>``, or after an unclosed
    ``<prompt>`` up to a ``RATIONALE:`` line or the end (small models often forget the
    closing tag); a ``RATIONALE:`` line inside the block ends the prompt too. A JSON
    ``Refinement`` is accepted as well. ``ValueError`` if none."""
    found = _TAGGED.search(text)
    if found:
        body, rest = found.group(1), text[found.end() :]
        # A rationale written before the closing tag is not part of the prompt.
        inside = _RATIONALE.search(body)
        if inside and body[: inside.start()].strip():
            body, rest = body[: inside.start()], body[inside.start() :] + rest
    elif opened := _OPENED.search(text):
        tail = opened.group(1)
        cut = _RATIONALE.search(tail)
        body, rest = (tail[: cut.start()], tail[cut.start() :]) if cut else (tail, "")
    elif "{" in text:
        return parse_structured(text, Refinement)
    else:
        raise ValueError("no <prompt>...</prompt> block in the reply")
    if not body.strip():
        raise ValueError("the <prompt> block is empty")
    rationale = _RATIONALE.search(rest)
    return Refinement(
        prompt=body.strip(), rationale=rationale.group(1).strip() if rationale else ""
    )


# The rewritten prompt is free text: asking for it as a tag-delimited reply keeps a
# small model's prompt out of JSON string escaping (where it tends to loop until
# the token cap) and lets the local backend's repetition guard work.
REFINEMENT_FORMAT = ReplyFormat(
    schema=Refinement,
    instruction="\n\nReply with the complete new prompt between a line <prompt> and a line "
    "</prompt>, then one line RATIONALE: <why, briefly>.",
    parse=parse_refinement,
    retry="Reply again: the new prompt between <prompt> and </prompt>, then RATIONALE: ...",
)


def attempts_text(attempts: list[Mapping[str, Any]]) -> str:
    """Earlier steps' textual rewards, for the next refinement."""
    if not attempts:
        return ""
    lines = [f"- attempt {i}: {a.get('feedback', '')}" for i, a in enumerate(attempts, 1)]
    return "\nEarlier candidate prompts this round were rejected:\n" + "\n".join(lines)


class SipdoStrategy(Strategy):
    """SIPDO's optimizer: error analysis -> recommendation -> refinement of the
    incumbent's instructions, evaluated on every verified task (its failures and
    everything it solves). The analysis is reused by later steps of an iteration.
    A refinement that cannot be read or copies the prompt back unchanged (the local
    1.5B does) is followed by one request for a single general rule, appended to
    the instructions (``sipdo.plugins.optimizers.lesson``).

    A step refines the incumbent, or this round's kept-back candidate that fixed
    the most more training tasks than it broke: its rules stay and the next ones
    add to them, so a candidate can gather the evidence the gate asks for, which
    one rule alone, helping a few tasks, cannot (``benchmarks/strategies.py``).

    When the run allows demonstrations, each step also tries the incumbent with
    one verified demonstration added, swapped or removed (no model call); both are
    evaluated on every verified task and the one with the higher pass rate is put
    forward (the refined instructions on a tie)."""

    name = "sipdo"

    def estimate_calls(self, n_tasks: int, n_failures: int) -> Mapping[str, int]:
        # recommendations and a refinement (after the run's one error analysis); if the
        # refinement is unusable, a rule, and one more if the prompt has that rule
        return {"optimizer": 4, "learner": n_tasks}

    def step(self, view: OptimizerView) -> StrategyFlow:
        failures = view.failures()
        analysis = next(
            (a["notes"]["analysis"] for a in view.attempts if "analysis" in a.get("notes", {})),
            None,
        )
        demo = view.demonstrations_candidate()
        if analysis is None:
            [result] = yield [Ask(self._analysis_messages(view, failures), ErrorAnalysis)]
            if result.value is None:
                error = f"error analysis unusable: {result.error}"
                return (yield from self._with_demo(view, demo, error, result.last_reply, {}))
            analysis = result.value.model_dump(mode="json")
        notes: dict[str, Any] = {"analysis": analysis}
        [rec] = yield [Ask(self._recommend_messages(view, analysis), Recommendation)]
        if rec.value is None:
            error = f"recommendation unusable: {rec.error}"
            return (yield from self._with_demo(view, demo, error, rec.last_reply, notes))
        notes["recommendations"] = rec.value.recommendations
        base = self._base(view)
        if base != view.incumbent:
            notes["built_on"] = base
        messages = self._refine_messages(view, rec.value.recommendations, base)
        [ref] = yield [Ask(messages, REFINEMENT_FORMAT)]
        instructions = self._instructions(view, base)
        if ref.value is None:
            failed = f"refinement unusable: {ref.error}"
        elif ref.value.prompt.strip() == instructions.strip():
            failed = "the rewritten prompt is identical to the current one"
        else:
            text, rationale, failed = ref.value.prompt.strip(), ref.value.rationale, ""
        if failed:
            # the last resort of a weak optimizer: one rule, appended (sipdo...lesson)
            ruled, error, raw = yield from appended_rule(
                messages, ref.last_reply or "", failed, instructions
            )
            if ruled is None:
                return (yield from self._with_demo(view, demo, error, raw, notes))
            text, rationale = ruled, f"one rule appended ({failed})"
            notes["fallback"] = "rule appended"
        components = {**view.components(base), INSTRUCTIONS: text}
        cand = NewCandidate(components, [base], "refine", rationale, notes)
        if cand.text.strip() == view.candidate(view.incumbent)["text"].strip():
            error = "the candidate is identical to the current prompt"
            return (yield from self._with_demo(view, demo, error, "", notes))
        if demo is None:
            yield [Evaluate([cand], view.task_ids)]
            return Selection(cand.id, view.state, note="refined the incumbent", notes=notes)
        [scored] = yield [Evaluate([cand, demo], view.task_ids)]
        rates = {c: _rate(scored.get(c, {}), view.task_ids) for c in (cand.id, demo.id)}
        notes["pass_rates"] = rates
        if rates[demo.id] > rates[cand.id]:
            return Selection(demo.id, view.state, note=demo.rationale, notes=notes)
        return Selection(cand.id, view.state, note="refined the incumbent", notes=notes)

    def _with_demo(
        self,
        view: OptimizerView,
        demo: NewCandidate | None,
        error: str,
        raw: str,
        notes: dict[str, Any],
    ) -> StrategyFlow:
        """No usable refinement: put the demonstration change forward alone, if any."""
        if demo is None:
            return Selection(None, view.state, error=error, raw=raw, notes=notes)
        notes = {**notes, "refinement_error": error}
        yield [Evaluate([demo], view.task_ids)]
        return Selection(demo.id, view.state, note=demo.rationale, raw=raw, notes=notes)

    def _instructions(self, view: OptimizerView, cid: str | None = None) -> str:
        return view.components(cid or view.incumbent).get(INSTRUCTIONS, "")

    def _base(self, view: OptimizerView) -> str:
        """What this step refines: the incumbent, or this round's kept-back candidate that
        fixed the most more tasks than it broke (its rules stack with the next ones, so
        a candidate can gather the evidence one rule alone cannot)."""
        best, margin = view.incumbent, 0
        for a in view.attempts:
            if a.get("accepted"):  # a new incumbent: earlier gains were against the old one
                best, margin = view.incumbent, 0
                continue
            cid = str(a.get("version_id") or "")
            gain = len(a.get("fixed", [])) - len(a.get("broken", []))
            if cid in view.candidates and gain > margin:
                best, margin = cid, gain
        return best

    def _analysis_messages(self, view: OptimizerView, failures: list[str]) -> list[BaseMessage]:
        return [
            SystemMessage(content=OPTIMIZER_SYSTEM),
            HumanMessage(
                content=f"Current prompt:\n<<<\n{self._instructions(view)}\n>>>\n\nFailures:\n"
                f"{view.describe_failures(failures)}\n\nStep 1, error analysis: group the "
                "failures into at most 3 failure modes and name the cause of each, one sentence "
                "each."
            ),
        ]

    def _recommend_messages(self, view: OptimizerView, analysis: Any) -> list[BaseMessage]:
        return [
            SystemMessage(content=OPTIMIZER_SYSTEM),
            HumanMessage(
                content=f"Current prompt:\n<<<\n{self._instructions(view)}\n>>>\n\n"
                f"Error analysis: {analysis}\n{attempts_text(view.attempts)}\n\nStep 2: "
                "recommend concrete changes to the prompt (at most 4, one sentence each). It "
                f"must keep solving the {len(view.solved())} tasks it solves now."
            ),
        ]

    def _refine_messages(
        self, view: OptimizerView, recs: list[str], base: str | None = None
    ) -> list[BaseMessage]:
        bullet = "\n".join(f"- {r}" for r in recs)
        return [
            SystemMessage(content=OPTIMIZER_SYSTEM),
            HumanMessage(
                content=f"Current prompt:\n<<<\n{self._instructions(view, base)}\n>>>\n\n"
                f"Recommendations:\n{bullet}\n{attempts_text(view.attempts)}\n\nStep 3: write "
                "the complete improved prompt. Keep every instruction of the current prompt, "
                "the reply format included, and add at most 3 short rules that apply to any "
                "task of this kind: never name a specific function, task or test value; "
                "under 150 words."
            ),
        ]


def _rate(cells: Mapping[str, Any], task_ids: list[str]) -> float:
    """Mean pass rate of one candidate's cells over ``task_ids`` (missing cells: 0)."""
    return sum(value(cells.get(t)) for t in task_ids) / max(1, len(task_ids))
