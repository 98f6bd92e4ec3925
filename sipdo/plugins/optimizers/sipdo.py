"""The built-in ``sipdo`` strategy: error analysis -> recommendation -> refinement."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from sipdo.plugins.optimizers.base import Candidate, Proposal, ProposalContext, Strategy
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
    closing tag); a JSON ``Refinement`` is accepted too. ``ValueError`` if none."""
    found = _TAGGED.search(text)
    if found:
        body, rest = found.group(1), text[found.end() :]
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


def _failures_text(ctx: ProposalContext, limit: int = 4) -> str:
    shown = [ctx.describe(f) for f in ctx.failures[:limit]]
    more = len(ctx.failures) - len(shown)
    return "\n\n".join(shown) + (f"\n\n(+{more} more failures)" if more > 0 else "")


def _attempts_text(attempts: list[dict[str, Any]]) -> str:
    if not attempts:
        return ""
    lines = [f"- attempt {i}: {a.get('feedback', '')}" for i, a in enumerate(attempts, 1)]
    return "\nEarlier candidate prompts this round were rejected:\n" + "\n".join(lines)


class SipdoStrategy(Strategy):
    """SIPDO's optimizer: three structured steps; the analysis is reused across refinements."""

    name = "sipdo"

    async def propose(self, ctx: ProposalContext) -> Proposal:
        analysis = next(
            (a["notes"]["analysis"] for a in ctx.attempts if "analysis" in a.get("notes", {})),
            None,
        )
        if analysis is None:
            result = await ctx.llm(self._analysis_messages(ctx), ErrorAnalysis)
            if result.value is None:
                return Proposal([], f"error analysis unusable: {result.error}", result.last_reply)
            analysis = result.value.model_dump(mode="json")
        rec = await ctx.llm(self._recommend_messages(ctx, analysis), Recommendation)
        if rec.value is None:
            notes = {"analysis": analysis}
            return Proposal([], f"recommendation unusable: {rec.error}", rec.last_reply, notes)
        recommendations = rec.value.recommendations
        ref = await ctx.llm(self._refine_messages(ctx, recommendations), REFINEMENT_FORMAT)
        notes = {"analysis": analysis, "recommendations": recommendations}
        if ref.value is None:
            return Proposal([], f"refinement unusable: {ref.error}", ref.last_reply, notes)
        candidate = Candidate(ref.value.prompt.strip(), ref.value.rationale, ctx.version_id, notes)
        return Proposal([candidate])

    def update_pool(
        self, pool: list[dict[str, Any]], evaluated: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """SIPDO keeps a lineage: every accepted version, newest last."""
        if not evaluated.get("accepted"):
            return list(pool)
        keep = {k: evaluated.get(k) for k in ("version_id", "text", "scores", "parent_id")}
        return [*pool, keep]

    def _analysis_messages(self, ctx: ProposalContext) -> list[BaseMessage]:
        return [
            SystemMessage(content=OPTIMIZER_SYSTEM),
            HumanMessage(
                content=f"Current prompt:\n<<<\n{ctx.prompt}\n>>>\n\nFailures:\n"
                f"{_failures_text(ctx)}\n\nStep 1, error analysis: group the failures into "
                "at most 3 failure modes and name the cause of each, one sentence each."
            ),
        ]

    def _recommend_messages(self, ctx: ProposalContext, analysis: Any) -> list[BaseMessage]:
        return [
            SystemMessage(content=OPTIMIZER_SYSTEM),
            HumanMessage(
                content=f"Current prompt:\n<<<\n{ctx.prompt}\n>>>\n\nError analysis: {analysis}\n"
                f"{_attempts_text(ctx.attempts)}\n\nStep 2: recommend concrete changes to the "
                f"prompt (at most 4, one sentence each). It must keep solving the "
                f"{len(ctx.solved)} tasks it solves now."
            ),
        ]

    def _refine_messages(self, ctx: ProposalContext, recs: list[str]) -> list[BaseMessage]:
        bullet = "\n".join(f"- {r}" for r in recs)
        return [
            SystemMessage(content=OPTIMIZER_SYSTEM),
            HumanMessage(
                content=f"Current prompt:\n<<<\n{ctx.prompt}\n>>>\n\nRecommendations:\n{bullet}\n"
                f"{_attempts_text(ctx.attempts)}\n\nStep 3: write the complete improved prompt. "
                "Keep every instruction of the current prompt, the reply format included, and "
                "add at most 3 short rules that apply to any task of this kind (no task names); "
                "under 150 words."
            ),
        ]
