"""A ship-with toy strategy for tests: appends scripted rules, no model calls.

``RuleListStrategy(["Rule one.", "Rule two."])`` proposes, at each step, the
incumbent's instructions with the next rule of the list appended (cycling),
evaluates it on every verified task and puts it forward. It exercises the whole
optimizer seam — new candidates with lineage, evaluations, selection, strategy
state that survives a resume — without an optimizer model, so users can test
their own graph wiring, domains and promotion policies with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sipdo.plugins.optimizers.base import Evaluate, OptimizerView, Selection, Strategy, StrategyFlow
from sipdo.plugins.optimizers.candidates import INSTRUCTIONS, NewCandidate


class RuleListStrategy(Strategy):
    """Appends ``rules[i]`` at step i (the index is kept in the strategy state)."""

    name = "rule-list"

    def __init__(self, rules: Sequence[str] = ("Handle empty inputs.",)) -> None:
        if not rules:
            raise ValueError("RuleListStrategy needs at least one rule")
        self.rules = list(rules)

    def estimate_calls(self, n_tasks: int, n_failures: int) -> Mapping[str, int]:
        return {"learner": n_tasks}

    def step(self, view: OptimizerView) -> StrategyFlow:
        index = int(view.state.get("next", 0))
        rule = self.rules[index % len(self.rules)]
        components = view.components(view.incumbent)
        components[INSTRUCTIONS] = f"{components.get(INSTRUCTIONS, '').rstrip()}\n{rule}".strip()
        cand = NewCandidate(components, [view.incumbent], "append_rule", f"rule {index}")
        yield [Evaluate([cand], view.task_ids)]
        return Selection(cand.id, {"next": index + 1}, note=f"appended rule {index}")
