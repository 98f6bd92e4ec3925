"""GEPA (Agrawal et al. 2025): Pareto-front parent sampling, reflective mutation, merge.

GEPA keeps a pool of candidates, each scored on every verified task. One step:

1. **grow** — pool candidates lacking a cell on a task added since (the task set
   grows every iteration) are evaluated on it first;
2. **front** — per task, the pool candidates with the top score; dominated
   candidates (every front they are on holds another survivor) are pruned from
   the pool; parents are drawn in proportion to the number of tasks they are best on
   (``sipdo.plugins.optimizers.pareto``);
3. **merge** (when one is due: after each accepted mutation, at most
   ``max_merges``) — two front candidates with a common ancestor no better than
   either; per component the version that changed; kept if on a subsample
   balanced over where each parent wins it scores at least the better parent;
4. otherwise **reflective mutation** — the sampled parent's next component in
   round robin is rewritten by the model from the parent's traces and the
   verifier's feedback on a minibatch (a rewrite that comes back unchanged gets
   one more turn saying so; if it is still unchanged or unreadable, the model is
   asked for one general rule, appended to the component:
   ``sipdo.plugins.optimizers.lesson``); kept only if it scores strictly more
   than the parent on that minibatch: more passes, or as many and more of the
   verifier's partial credit (the share of tests and compared inputs right; with a
   weak learner most minibatches hold no pass either way, and pass counts alone
   would reject every child there). When the run allows demonstrations,
   ``demonstrations`` is one of the components: its turn adds, swaps or removes
   one verified demonstration (no model call) and the same minibatch test applies.

A kept child is evaluated on every verified task, joins the pool and is put
forward for promotion; a rejected one ends the step with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from sipdo.errors import ConfigurationError
from sipdo.plugins.optimizers import pareto
from sipdo.plugins.optimizers.base import (
    Ask,
    Evaluate,
    OptimizerView,
    Selection,
    Strategy,
    StrategyFlow,
)
from sipdo.plugins.optimizers.candidates import DEMONSTRATIONS, NewCandidate, full_text
from sipdo.plugins.optimizers.ledger import Ledger
from sipdo.plugins.optimizers.lesson import appended_rule
from sipdo.plugins.optimizers.sipdo import REFINEMENT_FORMAT

REFLECT_SYSTEM = (
    "You improve one component of a solver model's prompt. You see the component, "
    "the solver's answers on a few tasks and the verifier's feedback on each. Write a "
    "new version of the component that fixes the failures and keeps what works; general "
    "rules only, never a specific function, task or test value."
)

UNCHANGED = (
    "That is the component unchanged. Write a changed version: add or rewrite at least "
    "one general rule that would have avoided the failures above."
)


class GEPAStrategy(Strategy):
    """Genetic-Pareto prompt evolution (see the module docstring)."""

    name = "gepa"

    def __init__(
        self,
        *,
        minibatch: int = 3,
        use_merge: bool = True,
        max_merges: int = 5,
        merge_subsample: int = 5,
    ) -> None:
        if minibatch < 1 or merge_subsample < 1 or max_merges < 0:
            raise ConfigurationError("gepa: minibatch and merge_subsample must be >= 1")
        self.minibatch = minibatch
        self.use_merge = use_merge
        self.max_merges = max_merges
        self.merge_subsample = merge_subsample

    def estimate_calls(self, n_tasks: int, n_failures: int) -> Mapping[str, int]:
        # a reflection, one more turn if it came back unchanged, one asking for a rule and
        # one more if the prompt has that rule
        return {"optimizer": 4, "learner": n_tasks + min(self.minibatch, n_tasks)}

    def step(self, view: OptimizerView) -> StrategyFlow:
        rng = view.rng()
        ledger = Ledger(view)
        tasks = view.task_ids
        state = _State(view.state)
        pool = [c for c in state.pool if c in view.candidates]
        pool = [view.incumbent, *(c for c in pool if c != view.incumbent)]
        gaps = {c: ledger.missing(c, tasks) for c in pool}
        if any(gaps.values()):  # new tasks since the pool was scored
            results = yield [Evaluate([c], gap) for c, gap in gaps.items() if gap]
            for result in results:
                ledger.add(result)
        agg = {c: ledger.mean(c, tasks) for c in view.candidates}
        fronts, dominated = pareto.remove_dominated(
            pareto.task_fronts(ledger.table, pool, tasks), agg
        )
        weights = pareto.sampling_weights(fronts)
        survivors = [c for c in pool if c in weights]
        state.pool = list(dict.fromkeys([view.incumbent, *survivors]))
        notes: dict[str, Any] = {
            "fronts": {t: list(f) for t, f in fronts.items()},
            "weights": weights,
            "dominated": dominated,
            "pruned": [c for c in pool if c not in state.pool],
        }
        if self.use_merge and state.merges_due > 0 and state.merges_tested < self.max_merges:
            found = pareto.find_merge(survivors, view.candidates, agg, state.merges_performed, rng)
            if found is not None:
                return (yield from self._merge(view, ledger, state, agg, found, rng, notes))
        parent = (
            pareto.sample_parent(weights, rng)
            if weights
            else max(pool, key=lambda c: (agg[c], -pool.index(c)))
        )
        return (yield from self._reflect(view, ledger, state, parent, rng, notes))

    # -- operators ------------------------------------------------------------------

    def _reflect(
        self,
        view: OptimizerView,
        ledger: Ledger,
        state: _State,
        parent: str,
        rng: Any,
        notes: dict[str, Any],
    ) -> StrategyFlow:
        components = view.components(parent)
        names = list(components)
        if view.demo_settings.enabled and DEMONSTRATIONS not in names:
            names.append(DEMONSTRATIONS)
        turn = state.next_component.get(parent, 0)
        name = names[turn % len(names)]
        state.next_component[parent] = turn + 1
        batch = self._minibatch(ledger, parent, view.task_ids, rng)
        notes |= {"parent": parent, "component": name, "minibatch": batch}
        if name == DEMONSTRATIONS:
            demo = view.demonstrations_candidate(parent)
            if demo is None:
                error = "no demonstration to add, swap or remove"
                return Selection(None, state.dump(), error=error, notes=notes)
            change = {"component": name, "minibatch": batch, "change": demo.operator}
            child = NewCandidate(
                demo.components, [parent], f"reflect:{name}", demo.rationale, change
            )
            return (yield from self._try_child(view, ledger, state, parent, child, batch, notes))
        messages = self._reflect_messages(view, ledger, parent, name, batch)
        [reply] = yield [Ask(messages, REFINEMENT_FORMAT)]
        if reply.value is not None and reply.value.prompt.strip() == components[name].strip():
            # small models often copy the component back: one more turn that says so
            said = [AIMessage(content=reply.last_reply or ""), HumanMessage(UNCHANGED)]
            messages = [*messages, *said]
            [reply] = yield [Ask(messages, REFINEMENT_FORMAT)]
        notes_of_child: dict[str, Any] = {"component": name, "minibatch": batch}
        if reply.value is None:
            failed = f"reflection unusable: {reply.error}"
        elif reply.value.prompt.strip() == components[name].strip():
            failed = f"{name} unchanged (also after a turn asking for a change)"
        else:
            text, rationale, failed = reply.value.prompt.strip(), reply.value.rationale, ""
        if failed:
            # the last resort of a weak optimizer: one rule, appended (sipdo...lesson)
            ruled, error, raw = yield from appended_rule(
                messages, reply.last_reply or "", failed, components[name]
            )
            if ruled is None:
                return Selection(None, state.dump(), error=error, raw=raw, notes=notes)
            text, rationale = ruled, f"one rule appended ({failed})"
            notes_of_child["fallback"] = "rule appended"
        child = NewCandidate(
            {**components, name: text}, [parent], f"reflect:{name}", rationale, notes_of_child
        )
        return (yield from self._try_child(view, ledger, state, parent, child, batch, notes))

    def _try_child(
        self,
        view: OptimizerView,
        ledger: Ledger,
        state: _State,
        parent: str,
        child: NewCandidate,
        batch: list[str],
        notes: dict[str, Any],
    ) -> StrategyFlow:
        """Kept only if it scores strictly more than its parent on the minibatch: more
        passes, or as many and more partial credit. Only a ranking for what to evaluate
        in full: promotion is still the gate's, on pass/fail."""
        [result] = yield [Evaluate([child], batch)]
        ledger.add(result)
        before, after = ledger.total(parent, batch), ledger.total(child.id, batch)
        credit = round(ledger.graded(parent, batch), 4), round(ledger.graded(child.id, batch), 4)
        notes["minibatch_scores"] = {
            "parent": before,
            "child": after,
            "credit": {"parent": credit[0], "child": credit[1]},
        }
        if (after, credit[1]) <= (before, credit[0]):
            error = (
                f"minibatch: the child scores {after:g}, the parent {before:g} of {len(batch)} "
                f"(partial credit {credit[1]:g} vs {credit[0]:g})"
            )
            return Selection(None, state.dump(), error=error, notes=notes)
        if self.use_merge and state.merges_tested < self.max_merges:
            state.merges_due += 1
        return (yield from self._admit(view, ledger, state, child, notes))

    def _merge(
        self,
        view: OptimizerView,
        ledger: Ledger,
        state: _State,
        agg: Mapping[str, float],
        found: tuple[str, str, str],
        rng: Any,
        notes: dict[str, Any],
    ) -> StrategyFlow:
        a, b, anc = found
        merged, source = pareto.merge_components(
            view.components(anc), view.components(a), view.components(b), agg[a], agg[b], rng
        )
        state.merges_due -= 1
        state.merges_tested += 1
        state.merges_performed.append([a, b, anc])
        taken = {k: a if s == "a" else b for k, s in source.items()}
        child = NewCandidate(
            merged, [a, b], "merge", f"merge via {anc}", {"ancestor": anc, "taken": taken}
        )
        notes |= {"merge": {"parents": [a, b], "ancestor": anc, "taken": taken}}
        if full_text(child.components) in (full_text(view.components(c)) for c in (a, b)):
            return Selection(None, state.dump(), error="the merge equals a parent", notes=notes)
        sub = pareto.merge_subsample(ledger.table, a, b, view.task_ids, self.merge_subsample, rng)
        [result] = yield [Evaluate([child], sub)]
        ledger.add(result)
        best = max(ledger.total(a, sub), ledger.total(b, sub))
        got = ledger.total(child.id, sub)
        notes["merge"]["subsample"] = {"tasks": sub, "merged": got, "best_parent": best}
        if got < best:
            error = f"merge: scores {got:g} on the subsample, the better parent {best:g}"
            return Selection(None, state.dump(), error=error, notes=notes)
        return (yield from self._admit(view, ledger, state, child, notes))

    def _admit(
        self,
        view: OptimizerView,
        ledger: Ledger,
        state: _State,
        child: NewCandidate,
        notes: dict[str, Any],
    ) -> StrategyFlow:
        """Full evaluation, then the child joins the pool and is put forward."""
        rest = ledger.missing(child.id, view.task_ids)
        if rest:
            [result] = yield [Evaluate([child], rest)]
            ledger.add(result)
        state.pool.append(child.id)
        if child.operator.startswith("reflect:"):  # the child's round robin goes on
            turn = state.next_component.get(child.parent_ids[0], 1)
            state.next_component[child.id] = turn
        notes["pool"] = list(state.pool)
        fronts = pareto.task_fronts(ledger.table, state.pool, view.task_ids)
        notes["front"] = [t for t, front in fronts.items() if child.id in front]
        score = ledger.mean(child.id, view.task_ids)
        note = f"{child.operator} of {', '.join(child.parent_ids)}: {score:.3f} on all tasks"
        return Selection(child.id, state.dump(), note=note, notes=notes)

    # -- helpers -----------------------------------------------------------------------

    def _minibatch(
        self, ledger: Ledger, parent: str, task_ids: Sequence[str], rng: Any
    ) -> list[str]:
        """Random tasks, up to half of them the parent's failures: the loop calls the
        optimizer because something fails, and a minibatch the parent aces cannot show
        a strict improvement."""
        size = min(self.minibatch, len(task_ids))
        fails = ledger.failures(parent, task_ids)
        chosen = rng.sample(fails, min(len(fails), max(1, math.ceil(size / 2))))
        rest = [t for t in task_ids if t not in chosen]
        chosen += rng.sample(rest, min(len(rest), size - len(chosen)))
        return sorted(chosen, key=list(task_ids).index)

    def _reflect_messages(
        self, view: OptimizerView, ledger: Ledger, parent: str, name: str, batch: Sequence[str]
    ) -> list[BaseMessage]:
        fails = [t for t in batch if ledger.value(parent, t) < 1]
        solved = [t for t in batch if t not in fails]
        traces = ledger.describe_failures(parent, fails, limit=len(fails)) or "(none)"
        current = view.components(parent)[name]
        others = {k: v for k, v in view.components(parent).items() if k != name and v.strip()}
        context = "".join(
            f"\n\nThe prompt's other component {k!r}:\n<<<\n{v}\n>>>" for k, v in others.items()
        )
        return [
            SystemMessage(content=REFLECT_SYSTEM),
            HumanMessage(
                content=f"Component {name!r} of the prompt:\n<<<\n{current}\n>>>"
                f"{context}\n\nSolved under it: {', '.join(solved) or 'none'}.\n\n"
                f"Failed under it, with the solver's answer and the verifier's feedback:\n{traces}"
                f"\n\nWrite the new version of component {name!r} in full."
            ),
        ]


class _State:
    """GEPA's state between steps (JSON-safe through ``dump``)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.pool: list[str] = list(data.get("pool", []))
        self.next_component: dict[str, int] = dict(data.get("next_component", {}))
        self.merges_due = int(data.get("merges_due", 0))
        self.merges_tested = int(data.get("merges_tested", 0))
        self.merges_performed: list[list[str]] = [list(m) for m in data.get("merges_performed", [])]

    def dump(self) -> dict[str, Any]:
        return {
            "pool": list(self.pool),
            "next_component": dict(self.next_component),
            "merges_due": self.merges_due,
            "merges_tested": self.merges_tested,
            "merges_performed": [list(m) for m in self.merges_performed],
        }
