"""ProTeGi (Pryzant et al. 2023): textual gradients, beam search, bandit selection.

One step expands every prompt of the beam:

1. **gradients** — from a minibatch of the prompt's failures the model writes
   ``gradients`` critiques ("why could this prompt have got these wrong?");
2. **edits** — each critique is applied: ``edits_per_gradient`` rewritten prompts
   (a reply that only repeats the prompt, or one already in the beam, is asked
   for once more, with that said: weak models often copy the prompt they are shown);
3. **paraphrases** — each edit is paraphrased ``paraphrases`` times (the paper's
   Monte-Carlo exploration of the edit's neighbourhood).

The beam and its expansions are the arms of a best-arm identification bandit:
each pull scores an arm on a random minibatch of the verified tasks (cells
already in the score table cost nothing). ``selector="ucb"`` runs UCB1 for
``rounds`` rounds of ``pulls_per_round`` pulls; ``"successive_rejects"`` drops
the worst arm after each phase until ``beam_width`` survive. The best
``beam_width`` arms are the next step's beam (kept in the strategy state); the
best arm the gate has not judged yet is put forward for promotion.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping, Sequence
from typing import Any, Literal

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from sipdo.errors import ConfigurationError
from sipdo.plugins.optimizers import bandits
from sipdo.plugins.optimizers.base import (
    Ask,
    Evaluate,
    OptimizerView,
    Request,
    Selection,
    Strategy,
    StrategyFlow,
)
from sipdo.plugins.optimizers.candidates import INSTRUCTIONS, NewCandidate
from sipdo.plugins.optimizers.ledger import Ledger
from sipdo.plugins.optimizers.sipdo import OPTIMIZER_SYSTEM, parse_refinement
from sipdo.structured import ReplyFormat

MAX_ARMS = 10  # beam + expansions scored per step (bounds successive rejects' phases)

SubFlow = Generator[list[Request], list[Any], list[str]]


class Critiques(BaseModel):
    """Textual gradients: why the prompt could have got the minibatch wrong."""

    critiques: list[str] = Field(min_length=1)


class Prompts(BaseModel):
    """Rewritten prompts (edits or paraphrases)."""

    prompts: list[str] = Field(min_length=1)


REPEAT_NOTE = (
    "Your last answer gave back this prompt, or one already tried, without a change. "
    "Change the prompt this time: add or rewrite an instruction that fixes the problem."
)
_BLOCK = re.compile(r"<prompt>\s*(.*?)\s*</prompt>", re.DOTALL | re.IGNORECASE)


def parse_prompts(text: str) -> Prompts:
    """Every ``<prompt>...</prompt>`` block of a reply (or one unclosed block)."""
    found = [b.strip() for b in _BLOCK.findall(text) if b.strip()]
    if found:
        return Prompts(prompts=found)
    return Prompts(prompts=[parse_refinement(text).prompt])


PROMPTS_FORMAT = ReplyFormat(
    schema=Prompts,
    instruction="\n\nWrite each prompt in full between a line <prompt> and a line </prompt>.",
    parse=parse_prompts,
    retry="Reply again: each complete prompt between <prompt> and </prompt>.",
)


class ProTeGiStrategy(Strategy):
    """Textual-gradient beam search with bandit selection (see the module docstring)."""

    name = "protegi"

    def __init__(
        self,
        *,
        beam_width: int = 2,
        gradients: int = 2,
        edits_per_gradient: int = 1,
        paraphrases: int = 1,
        minibatch: int = 4,
        eval_batch: int = 3,
        selector: Literal["ucb", "successive_rejects"] = "ucb",
        rounds: int = 4,
        pulls_per_round: int = 2,
        exploration: float = 1.0,
        sr_budget: int | None = None,
    ) -> None:
        if min(beam_width, gradients, edits_per_gradient, minibatch, eval_batch) < 1:
            raise ConfigurationError("protegi: beam, gradients, edits and batches must be >= 1")
        if selector not in ("ucb", "successive_rejects"):
            raise ConfigurationError(f"protegi: unknown selector {selector!r}")
        if not 0 <= rounds <= 10 or pulls_per_round < 1 or paraphrases < 0:
            raise ConfigurationError("protegi: rounds must be in 0..10, pulls_per_round >= 1")
        self.beam_width = beam_width
        self.gradients = gradients
        self.edits_per_gradient = edits_per_gradient
        self.paraphrases = paraphrases
        self.minibatch = minibatch
        self.eval_batch = eval_batch
        self.selector = selector
        self.rounds = rounds
        self.pulls_per_round = pulls_per_round
        self.exploration = exploration
        self.sr_budget = sr_budget

    def estimate_calls(self, n_tasks: int, n_failures: int) -> Mapping[str, int]:
        # per critique: an edit, at most one more when it repeats, a paraphrase
        per_member = 1 + self.gradients * (2 + (1 if self.paraphrases else 0))
        arms = min(MAX_ARMS, self.beam_width * (1 + per_member))
        pulls = arms + self.rounds * self.pulls_per_round
        return {
            "optimizer": self.beam_width * per_member,
            "learner": min(arms * n_tasks, pulls * min(self.eval_batch, n_tasks)),
        }

    # -- the flow ---------------------------------------------------------------------

    def step(self, view: OptimizerView) -> StrategyFlow:
        rng = view.rng()
        ledger = Ledger(view)
        beam = self._beam(view)
        # Beam members with no known failure are probed on tasks they were not scored on.
        probe = {
            c: rng.sample(gap, min(self.minibatch, len(gap)))
            for c in beam
            if not ledger.failures(c) and (gap := ledger.missing(c, view.task_ids))
        }
        if probe:
            results = yield [Evaluate([c], tids) for c, tids in probe.items()]
            for result in results:
                ledger.add(result)
        errors = {
            c: rng.sample(fails, min(self.minibatch, len(fails)))
            for c in beam
            if (fails := ledger.failures(c))
        }
        if not errors:
            return Selection(None, self._state(beam), error="no beam prompt has a failure")
        grads = yield [
            Ask(self._gradient_messages(view, ledger, c, e), Critiques) for c, e in errors.items()
        ]
        critiques: list[tuple[str, str]] = []
        for member, result in zip(errors, grads, strict=True):
            if result.value is not None:
                texts = [g.strip() for g in result.value.critiques if g.strip()]
                critiques += [(member, g) for g in texts[: self.gradients]]
        if not critiques:
            return Selection(None, self._state(beam), error=f"no usable gradient: {grads[0].error}")
        edits = yield [Ask(self._edit_messages(view, m, g), PROMPTS_FORMAT) for m, g in critiques]
        seen = {self._instructions(view, c).strip() for c in beam}
        new: list[NewCandidate] = []
        repeated: list[tuple[str, str]] = []
        for (member, critique), result in zip(critiques, edits, strict=True):
            if not self._take_edits(view, member, critique, result, seen, new) and result.value:
                repeated.append((member, critique))
        if repeated:
            again = yield [
                Ask(self._edit_messages(view, m, g, repeated=True), PROMPTS_FORMAT)
                for m, g in repeated
            ]
            for (member, critique), result in zip(repeated, again, strict=True):
                self._take_edits(view, member, critique, result, seen, new)
        if self.paraphrases and new:
            paras = yield [Ask(self._paraphrase_messages(c), PROMPTS_FORMAT) for c in new]
            for edit, result in zip(list(new), paras, strict=True):
                for text in (result.value.prompts if result.value else [])[: self.paraphrases]:
                    para = self._child(view, edit, text, "protegi_paraphrase", edit.rationale)
                    if para is not None and text.strip() not in seen:
                        seen.add(text.strip())
                        new.append(para)
        if not new:
            return Selection(None, self._state(beam), error="the edits repeat the beam's prompts")
        new = new[: MAX_ARMS - len(beam)]
        arms: list[NewCandidate | str] = [*beam, *new]
        # Every arm is pulled once on a shared minibatch (this also registers the new ones).
        pulls: dict[str, list[float]] = {a if isinstance(a, str) else a.id: [] for a in arms}
        tids = self._batch(view, rng)
        [result] = yield [Evaluate(arms, tids)]
        self._record(ledger, result, tids, pulls)
        if self.selector == "ucb":
            ranked = yield from self._ucb(view, ledger, rng, pulls)
        else:
            ranked = yield from self._successive_rejects(view, ledger, rng, pulls)
        next_beam = ranked[: self.beam_width]
        # The best arm the gate has not yet judged: a new one, or a survivor of earlier beams.
        decided = {d.get("candidate_id") for d in view.decisions} | {view.incumbent}
        pick = next((a for a in ranked if a not in decided), None)
        notes: dict[str, Any] = {
            "gradients": [g for _, g in critiques],
            "selector": self.selector,
            "pulls": {a: [round(r, 4) for r in rs] for a, rs in pulls.items()},
            "beam": next_beam,
        }
        note = f"{len(new)} expansions of a beam of {len(beam)}; {self.selector} kept {next_beam}"
        return Selection(pick, self._state(next_beam), note=note, notes=notes)

    def _ucb(
        self, view: OptimizerView, ledger: Ledger, rng: Any, pulls: dict[str, list[float]]
    ) -> SubFlow:
        """UCB1 rounds of ``pulls_per_round`` pulls; arms ranked by empirical mean."""
        for _ in range(self.rounds):
            chosen = bandits.ucb_pick(pulls, self.pulls_per_round, self.exploration)
            tids = self._batch(view, rng)
            [result] = yield [Evaluate(chosen, tids)]
            self._record(ledger, result, tids, pulls)
        return bandits.ranking(pulls)

    def _successive_rejects(
        self, view: OptimizerView, ledger: Ledger, rng: Any, pulls: dict[str, list[float]]
    ) -> SubFlow:
        """Phases: survivors pulled up to ``n_k`` times each, then the worst dropped. Ranked:
        the survivors by mean, then the rejected, last rejected first."""
        alive = list(pulls)
        budget = self.sr_budget or len(alive) * (1 + self.rounds)
        rejected: list[str] = []
        for n_k in bandits.sr_schedule(len(alive), budget, keep=self.beam_width):
            extra = max(n_k - len(pulls[a]) for a in alive)
            batches = [self._batch(view, rng) for _ in range(extra)]
            requests: list[Request] = [
                Evaluate([a for a in alive if len(pulls[a]) + j < n_k], tids)
                for j, tids in enumerate(batches)
            ]
            results = (yield requests) if requests else []
            for tids, result in zip(batches, results, strict=True):
                self._record(ledger, result, tids, pulls)
            for arm in bandits.reject_worst(pulls, alive):
                alive.remove(arm)
                rejected.insert(0, arm)
        return [*bandits.ranking({a: pulls[a] for a in alive}), *rejected]

    # -- helpers ----------------------------------------------------------------------

    def _beam(self, view: OptimizerView) -> list[str]:
        kept = [c for c in view.state.get("beam", []) if c in view.candidates]
        beam = [view.incumbent, *(c for c in kept if c != view.incumbent)]
        return beam[: self.beam_width]

    def _state(self, beam: Sequence[str]) -> dict[str, Any]:
        return {"beam": list(beam)}

    def _batch(self, view: OptimizerView, rng: Any) -> list[str]:
        tids = view.task_ids
        return sorted(rng.sample(tids, min(self.eval_batch, len(tids))), key=tids.index)

    @staticmethod
    def _record(
        ledger: Ledger,
        result: Mapping[str, Any],
        tids: Sequence[str],
        pulls: dict[str, list[float]],
    ) -> None:
        ledger.add(result)
        for cid in result:
            pulls[cid].append(ledger.mean(cid, tids))

    def _take_edits(
        self,
        view: OptimizerView,
        member: str,
        critique: str,
        result: Any,
        seen: set[str],
        new: list[NewCandidate],
    ) -> int:
        """Add the reply's edits that are new prompts to ``new``; how many were."""
        added = 0
        for text in (result.value.prompts if result.value else [])[: self.edits_per_gradient]:
            cand = self._child(view, member, text, "protegi_edit", critique)
            if cand is not None and text.strip() not in seen:
                seen.add(text.strip())
                new.append(cand)
                added += 1
        return added

    @staticmethod
    def _instructions(view: OptimizerView, cid: str) -> str:
        return view.components(cid).get(INSTRUCTIONS, "")

    def _child(
        self, view: OptimizerView, parent: str | NewCandidate, text: str, op: str, why: str
    ) -> NewCandidate | None:
        text = text.strip()
        if not text:
            return None
        if isinstance(parent, NewCandidate):
            components, pid = dict(parent.components), parent.id
        else:
            components, pid = view.components(parent), parent
        if text == components.get(INSTRUCTIONS, "").strip():
            return None
        components[INSTRUCTIONS] = text
        return NewCandidate(components, [pid], op, why, {"gradient": why})

    def _gradient_messages(
        self, view: OptimizerView, ledger: Ledger, cid: str, errors: Sequence[str]
    ) -> list[BaseMessage]:
        return [
            SystemMessage(content=OPTIMIZER_SYSTEM),
            HumanMessage(
                content=f"Current prompt:\n<<<\n{self._instructions(view, cid)}\n>>>\n\n"
                f"The solver got these tasks wrong under it:\n"
                f"{ledger.describe_failures(cid, errors, limit=self.minibatch)}\n\n"
                f"Give {self.gradients} reasons why the prompt could have led to these "
                "failures, one sentence each, each about the prompt, general enough to hold "
                "for other tasks of this kind."
            ),
        ]

    def _edit_messages(
        self, view: OptimizerView, cid: str, critique: str, *, repeated: bool = False
    ) -> list[BaseMessage]:
        count = self.edits_per_gradient
        again = [HumanMessage(content=REPEAT_NOTE)] if repeated else []
        return [
            SystemMessage(content=OPTIMIZER_SYSTEM),
            HumanMessage(
                content=f"Current prompt:\n<<<\n{self._instructions(view, cid)}\n>>>\n\n"
                f"The problem with this prompt: {critique}\n\nWrite {count} improved "
                f"prompt{'s' if count > 1 else ''} that fix this problem. Keep every "
                "instruction that works, the reply format included; never name a specific "
                "function, task or test value; under 150 words each."
            ),
            *again,
        ]

    def _paraphrase_messages(self, cand: NewCandidate) -> list[BaseMessage]:
        count = self.paraphrases
        return [
            SystemMessage(content="You rewrite prompts without changing what they ask for."),
            HumanMessage(
                content=f"Prompt:\n<<<\n{cand.components.get(INSTRUCTIONS, '')}\n>>>\n\n"
                f"Write {count} variation{'s' if count > 1 else ''} of this prompt that keep "
                "its meaning and every rule in it, worded differently."
            ),
        ]
