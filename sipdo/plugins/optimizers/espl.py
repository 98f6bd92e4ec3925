"""E-SPL (Zhang, Chen & Stadie 2026): a TrueSkill-rated population evolved by diff edits.

The population (at most ``population`` candidates, the incumbent always in it)
lives in the strategy state with each member's TrueSkill rating ``(mu, sigma)``.
One step is one tournament:

1. the ``active`` members with the highest ``mu + lam * sigma`` (optimistic
   selection) are scored on one shared batch of tasks;
2. their ranking on the batch updates their ratings (``trueskill``; equal
   scores are draws) — relative performance, comparable across rounds whose
   batches differ in difficulty;
3. **mutation** — the model reflects on the failures of the round's best
   member and writes a diff edit (SEARCH/REPLACE blocks) of it; the child
   inherits its rating with ``sigma`` widened by ``child_sigma``;
4. **crossover** — the model sees the score rows (members x batch tasks) of
   the ``crossover_parents`` best-rated members and writes a diff edit of the
   one with the highest batch total, carrying over what the others get right; the child's
   rating is the score-weighted mean of its parents', ``sigma`` widened;
5. children are scored on the same batch; the best candidate that beats the
   incumbent there is put forward. A diff that does not apply gets one repair
   turn (the reason, and the layout shown on the prompt's own last line: small
   models copy an abstract template's placeholders); if that does not apply
   either, the model is asked for one general rule, appended as an edit with an
   empty SEARCH part (``sipdo.plugins.optimizers.lesson``); without a usable
   rule it is a rejected candidate with every reason
   (``sipdo.plugins.optimizers.diffedit``);
6. the population keeps its ``population`` best by ``mu``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import trueskill
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel

from sipdo.errors import ConfigurationError
from sipdo.plugins.optimizers.base import (
    Ask,
    Evaluate,
    OptimizerView,
    Selection,
    Strategy,
    StrategyFlow,
)
from sipdo.plugins.optimizers.candidates import INSTRUCTIONS, NewCandidate
from sipdo.plugins.optimizers.diffedit import DiffError, apply_diff
from sipdo.plugins.optimizers.ledger import Ledger
from sipdo.plugins.optimizers.lesson import asked_rule
from sipdo.structured import ReplyFormat

Rating = tuple[float, float]

EDIT_SYSTEM = (
    "You improve the system prompt of a solver model by editing it. Edit with "
    "SEARCH/REPLACE blocks:\n<<<<<<< SEARCH\n(lines copied exactly from the prompt)\n"
    "=======\n(the new lines)\n>>>>>>> REPLACE\nAn empty SEARCH part appends. Keep what "
    "works; general rules only, never a specific function, task or test value."
)


class DiffReply(BaseModel):
    """The model's reply, kept whole: the strategy parses and applies the edit itself,
    so a malformed diff becomes a rejected candidate rather than a retry."""

    text: str


def repair_messages(
    messages: Sequence[BaseMessage], reply: str, reason: str, prompt: str
) -> list[BaseMessage]:
    """One more turn after a diff that did not apply: the reason, and the layout shown
    on the prompt's own last line (small models copy an abstract template literally)."""
    last = next((ln for ln in reversed(prompt.splitlines()) if ln.strip()), "")
    return [
        *messages,
        AIMessage(content=reply),
        HumanMessage(
            content=f"That edit cannot be applied: {reason}. Write the edit again as real "
            "SEARCH/REPLACE blocks. For example, this block adds a rule after the prompt's "
            "last line; write a rule of your own from your lessons in place of "
            f"<one new rule>:\n<<<<<<< SEARCH\n{last}\n=======\n{last}\n<one new rule>\n"
            ">>>>>>> REPLACE"
        ),
    ]


DIFF_FORMAT = ReplyFormat(
    schema=DiffReply,
    instruction="\n\nFirst write the lessons in at most 3 short lines, then the "
    "SEARCH/REPLACE blocks.",
    parse=lambda text: DiffReply(text=text),
)


def rate(
    ratings: Mapping[str, Rating], scores: Mapping[str, float], env: trueskill.TrueSkill
) -> dict[str, Rating]:
    """New ratings of the ``scores`` keys from one ranking (higher score = better rank;
    equal scores draw). Fewer than two players: unchanged."""
    players = list(scores)
    if len(players) < 2:
        return {p: ratings[p] for p in players}
    distinct = sorted(set(scores.values()), reverse=True)
    ranks = [distinct.index(scores[p]) for p in players]
    teams = [(env.create_rating(*ratings[p]),) for p in players]
    rated = env.rate(teams, ranks=ranks)
    return {p: (float(t[0].mu), float(t[0].sigma)) for p, t in zip(players, rated, strict=True)}


def _shown(rating: Rating) -> dict[str, float]:
    return {"mu": round(rating[0], 3), "sigma": round(rating[1], 3)}


def optimistic(rating: Rating, lam: float) -> float:
    """Selection score ``mu + lam * sigma``."""
    return rating[0] + lam * rating[1]


def inherit(parents: Sequence[Rating], weights: Sequence[float], extra_sigma: float) -> Rating:
    """A child's rating: the weighted mean of its parents' ``mu``, and their mean
    variance widened by ``extra_sigma``."""
    total = sum(weights) or float(len(weights))
    ws = [w / total for w in weights] if sum(weights) else [1 / len(weights)] * len(weights)
    mu = sum(w * p[0] for w, p in zip(ws, parents, strict=True))
    var = sum(w * p[1] ** 2 for w, p in zip(ws, parents, strict=True))
    return mu, math.sqrt(var + extra_sigma**2)


class ESPLStrategy(Strategy):
    """Evolutionary system prompt learning (see the module docstring)."""

    name = "espl"

    def __init__(
        self,
        *,
        population: int = 4,
        active: int = 4,
        batch_size: int = 4,
        lam: float = 1.0,
        child_sigma: float = 2.0,
        crossover_parents: int = 3,
        draw_probability: float = 0.1,
    ) -> None:
        if min(population, active, batch_size) < 1 or crossover_parents < 2:
            raise ConfigurationError("espl: sizes must be >= 1 and crossover_parents >= 2")
        self.population = population
        self.active = active
        self.batch_size = batch_size
        self.lam = lam
        self.child_sigma = child_sigma
        self.crossover_parents = crossover_parents
        self.env = trueskill.TrueSkill(draw_probability=draw_probability)

    def estimate_calls(self, n_tasks: int, n_failures: int) -> Mapping[str, int]:
        size = min(self.batch_size, n_tasks)
        # a mutation and a crossover, each with at most a repair turn and two rule requests
        return {"optimizer": 8, "learner": (min(self.active, self.population) + 2) * size}

    def step(self, view: OptimizerView) -> StrategyFlow:
        rng = view.rng()
        ledger = Ledger(view)
        default: Rating = (self.env.mu, self.env.sigma)
        ratings: dict[str, Rating] = {
            c: (float(r[0]), float(r[1]))
            for c, r in view.state.get("ratings", {}).items()
            if c in view.candidates
        }
        members = [c for c in view.state.get("population", []) if c in ratings]
        if view.incumbent not in members:
            members.insert(0, view.incumbent)
            ratings.setdefault(view.incumbent, default)
        rounds = int(view.state.get("round", 0))
        active = sorted(members, key=lambda c: -optimistic(ratings[c], self.lam))[: self.active]
        if view.incumbent not in active:
            active[-1] = view.incumbent
        batch = self._batch(ledger, view, rng)
        [scored] = yield [Evaluate(active, batch)]
        ledger.add(scored)
        batch_score = {c: ledger.mean(c, batch) for c in active}
        ratings.update(rate(ratings, batch_score, self.env))
        # the round's best on the batch (ties: the better rated) is the one mutated
        best = max(active, key=lambda c: (batch_score[c], optimistic(ratings[c], self.lam)))
        fails = ledger.failures(best, batch) or ledger.failures(best)
        requests: list[Ask] = []
        kinds: list[str] = []
        if fails:
            requests.append(Ask(self._mutation_messages(view, ledger, best, fails), DIFF_FORMAT))
            kinds.append("mutation")
        parents = sorted(active, key=lambda c: -optimistic(ratings[c], self.lam))
        parents = parents[: self.crossover_parents]
        target = max(parents, key=lambda c: (batch_score[c], -parents.index(c)))
        if len(parents) >= 2:
            messages = self._crossover_messages(view, ledger, parents, target, batch)
            requests.append(Ask(messages, DIFF_FORMAT))
            kinds.append("crossover")
        replies = (yield [*requests]) if requests else []
        children: list[NewCandidate] = []
        child_ratings: dict[str, Rating] = {}
        rejected: list[dict[str, str]] = []
        fallbacks: list[str] = []  # operators whose edit is the one appended rule
        for kind, request, reply in zip(kinds, requests, replies, strict=True):
            source = best if kind == "mutation" else target
            prompt = view.components(source).get(INSTRUCTIONS, "")
            text = reply.value.text if reply.value is not None else ""
            try:
                new_text = apply_diff(prompt, text)
            except DiffError as first:
                # one repair turn with the reason; a second failure rejects the candidate
                messages = repair_messages(request.messages, text, str(first), prompt)
                [again] = yield [Ask(messages, DIFF_FORMAT)]
                text = again.value.text if again.value is not None else ""
                try:
                    new_text = apply_diff(prompt, text)
                except DiffError as exc:
                    # the last resort: one rule, appended — an edit with an empty SEARCH part
                    reason = f"{exc} (after a repair turn; first: {first})"
                    rule, error, raw = yield from asked_rule(messages, text, reason, prompt)
                    try:
                        if rule is None:
                            raise DiffError(error)
                        text = f"<<<<<<< SEARCH\n=======\n{rule}\n>>>>>>> REPLACE"
                        new_text = apply_diff(prompt, text)
                    except DiffError as last:
                        why = error or f"{reason}; no rule to append either: {last}"
                        rejected.append({"operator": kind, "reason": why, "raw": raw[-2000:]})
                        continue
                    fallbacks.append(kind)
            ids = [best] if kind == "mutation" else parents
            weights = [1.0] if kind == "mutation" else [batch_score[p] + 1e-3 for p in parents]
            inherited = inherit([ratings[p] for p in ids], weights, self.child_sigma)
            child = NewCandidate(
                {**view.components(source), INSTRUCTIONS: new_text},
                ids,
                kind,
                f"diff edit of {source}",
                {"diff": text[-2000:], "edited": source, "rating": _shown(inherited)}
                | ({"fallback": "rule appended"} if kind in fallbacks else {}),
            )
            if child.id in view.candidates or any(c.id == child.id for c in children):
                rejected.append({"operator": kind, "reason": "the edit repeats a known prompt"})
                continue
            children.append(child)
            child_ratings[child.id] = inherited
        notes: dict[str, Any] = {
            "batch": batch,
            "batch_scores": {c: round(s, 4) for c, s in batch_score.items()},
            "round_best": best,
            "crossover_parents": parents if "crossover" in kinds else [],
            "rejected": rejected,
        }
        if children:
            [scored] = yield [Evaluate(children, batch)]
            ledger.add(scored)
            batch_score |= {c.id: ledger.mean(c.id, batch) for c in children}
        ratings |= child_ratings
        members = self._survivors([*members, *child_ratings], ratings, view.incumbent)
        notes["ratings"] = {c: [round(r[0], 3), round(r[1], 3)] for c, r in ratings.items()}
        state = {
            "population": members,
            "ratings": {c: [ratings[c][0], ratings[c][1]] for c in members},
            "round": rounds + 1,
        }
        decided = {d.get("candidate_id") for d in view.decisions}
        bar = batch_score[view.incumbent]
        contenders = [
            c
            for c in batch_score
            if c != view.incumbent and c not in decided and batch_score[c] > bar
        ]
        if not contenders:
            why = "; ".join(f"{r['operator']} rejected: {r['reason']}" for r in rejected)
            error = why or f"no candidate beats the incumbent's {bar:.2f} on the shared batch"
            raw = rejected[-1].get("raw", "") if rejected else ""
            return Selection(None, state, error=error, raw=raw, notes=notes)
        pick = max(contenders, key=lambda c: (batch_score[c], ratings[c][0]))
        notes["rating"] = _shown(ratings[pick])
        note = f"round {rounds + 1}: {len(children)} children, put forward {pick}"
        return Selection(pick, state, note=note, notes=notes)

    # -- helpers ------------------------------------------------------------------------

    def _survivors(
        self, members: Sequence[str], ratings: Mapping[str, Rating], incumbent: str
    ) -> list[str]:
        """The ``population`` best by ``mu`` (the incumbent always kept), in member order."""
        ranked = sorted(dict.fromkeys(members), key=lambda c: -ratings[c][0])
        keep = [incumbent, *(c for c in ranked if c != incumbent)][: self.population]
        return [c for c in dict.fromkeys(members) if c in keep]

    def _batch(self, ledger: Ledger, view: OptimizerView, rng: Any) -> list[str]:
        """The shared batch: random tasks, at least one of them an incumbent failure."""
        tids = view.task_ids
        size = min(self.batch_size, len(tids))
        fails = ledger.failures(view.incumbent)
        chosen = rng.sample(fails, 1) if fails else []
        rest = [t for t in tids if t not in chosen]
        chosen += rng.sample(rest, size - len(chosen))
        return sorted(chosen, key=tids.index)

    def _mutation_messages(
        self, view: OptimizerView, ledger: Ledger, cid: str, fails: Sequence[str]
    ) -> list[BaseMessage]:
        return [
            SystemMessage(content=EDIT_SYSTEM),
            HumanMessage(
                content=f"Prompt:\n<<<\n{view.components(cid).get(INSTRUCTIONS, '')}\n>>>\n\n"
                f"The solver failed these tasks under it:\n"
                f"{ledger.describe_failures(cid, fails)}\n\nReflect on what went wrong, "
                "then edit the prompt so it avoids these mistakes."
            ),
        ]

    def _crossover_messages(
        self,
        view: OptimizerView,
        ledger: Ledger,
        parents: Sequence[str],
        target: str,
        batch: Sequence[str],
    ) -> list[BaseMessage]:
        texts = "\n\n".join(
            f"{p}:\n<<<\n{view.components(p).get(INSTRUCTIONS, '')}\n>>>" for p in parents
        )
        return [
            SystemMessage(content=EDIT_SYSTEM),
            HumanMessage(
                content=f"Prompts:\n{texts}\n\nPer-task results on a shared batch (1 solved, "
                f"0 failed):\n{ledger.score_rows(parents, batch)}\n\nEach prompt is right on "
                f"some tasks. Edit prompt {target} so it also carries what the others get "
                "right on the tasks it fails."
            ),
        ]
