"""Promotion policies: when a candidate may replace the incumbent prompt.

The graph applies the policy for every strategy (a strategy only puts a
candidate forward). A policy first names the *evidence* it needs — cells of the
score table the graph must fill, counted against the budget like any other
evaluation — then decides on the filled table. All pure.

- ``strict``: the SIPDO paper's rule: fixes at least one failure and breaks none
  of the tasks the incumbent solves.
- ``statistical``: a one-sided paired sign test over the verified tasks, with a
  stated regression allowance (see ``StatisticalGate``).
- ``pareto``: GEPA's view: on the per-task front and best on the aggregate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sipdo.errors import ConfigurationError, UnknownPluginError
from sipdo.plugins.optimizers.scores import Table, dominates, mean_score, missing, paired, value


@dataclass(frozen=True)
class Evidence:
    """Cells the graph must fill before a decision: ``samples`` per (candidate, task)."""

    candidate_ids: tuple[str, ...]
    task_ids: tuple[str, ...]
    samples: int = 1


@runtime_checkable
class PromotionPolicy(Protocol):
    """Decides whether ``cand`` replaces ``inc``, on the verified tasks ``task_ids``.

    Invariants: ``evidence`` is called until it returns nothing (at most a few
    rounds) and only asks for cells that are missing or have too few samples;
    ``decide`` is a function of the table alone and returns a ``Decision`` dict
    (``candidate_id``, ``promoted``, ``policy``, ``reason``, ``wins``,
    ``losses``, ``stats``). A candidate without full evidence is never promoted.
    """

    @property
    def name(self) -> str: ...

    def evidence(
        self, table: Table, cand: str, inc: str, task_ids: Sequence[str], *, stochastic: bool
    ) -> list[Evidence]: ...

    def decide(
        self, table: Table, cand: str, inc: str, task_ids: Sequence[str], *, others: Sequence[str]
    ) -> dict[str, Any]: ...


def _coverage(table: Table, cand: str, task_ids: Sequence[str]) -> list[Evidence]:
    gap = missing(table, cand, task_ids)
    return [Evidence((cand,), tuple(gap))] if gap else []


def _decision(
    policy: str,
    cand: str,
    promoted: bool,
    reason: str,
    wins: list[str],
    losses: list[str],
    **stats: float,
) -> dict[str, Any]:
    return {
        "candidate_id": cand,
        "promoted": promoted,
        "policy": policy,
        "reason": reason,
        "wins": wins,
        "losses": losses,
        "stats": {k: round(float(v), 6) for k, v in stats.items()},
    }


def _incomplete(policy: str, table: Table, cand: str, task_ids: Sequence[str]) -> dict[str, Any]:
    gap = missing(table, cand, task_ids)
    return _decision(policy, cand, False, f"not evaluated on {len(gap)} verified tasks", [], [])


@dataclass(frozen=True)
class StrictGate:
    """SIPDO's no-regression gate: at least one fix, no solved task broken."""

    name: str = "strict"

    def evidence(
        self, table: Table, cand: str, inc: str, task_ids: Sequence[str], *, stochastic: bool
    ) -> list[Evidence]:
        return _coverage(table, cand, task_ids)

    def decide(
        self, table: Table, cand: str, inc: str, task_ids: Sequence[str], *, others: Sequence[str]
    ) -> dict[str, Any]:
        if missing(table, cand, task_ids):
            return _incomplete(self.name, table, cand, task_ids)
        wins, losses, _ = paired(table, cand, inc, task_ids)
        if losses:
            reason = f"rejected by the no-regression gate: breaks {len(losses)} solved task(s)"
        elif not wins:
            reason = "rejected by the no-regression gate: fixes no failure"
        else:
            reason = f"passed the no-regression gate: fixes {len(wins)}, breaks none"
        return _decision(self.name, cand, bool(wins) and not losses, reason, wins, losses)


def sign_test_p(wins: int, losses: int) -> float:
    """One-sided exact sign test: P(at least ``wins`` of ``wins + losses`` fair coin flips)."""
    n = wins + losses
    if n == 0:
        return 1.0
    return float(sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n)


@dataclass(frozen=True)
class StatisticalGate:
    """Promote on a paired test over every verified task, allowing a few regressions.

    The test is the exact one-sided **sign test** on the tasks where candidate
    and incumbent differ (McNemar's exact test for pass/fail outcomes): the
    units are tasks, so the question it answers is the one a user asks — "on a
    new task drawn like these, is the candidate more likely to be right?" —
    and it assumes nothing about how scores are distributed. Ties carry no
    information about the direction and are left out. Promoted when
    ``p <= alpha`` and the losses are at most ``floor(regression_allowance x
    tasks compared)``: any prompt edit flips some outcomes both ways (measured
    here: ~16% of HumanEval outcomes per edit), so a strict zero would reject
    nearly every real improvement, while the test keeps 2-better-2-worse noise out.

    With a stochastic learner, tasks where the two differ are sampled a second
    time (``resamples``) for both before deciding, and the per-task values
    compared are pass rates over the samples.
    """

    alpha: float = 0.05
    regression_allowance: float = 0.1
    resamples: int = 2
    name: str = "statistical"

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ConfigurationError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if not 0 <= self.regression_allowance < 1:
            raise ConfigurationError(
                f"regression_allowance must be in [0, 1), got {self.regression_allowance!r}"
            )

    def evidence(
        self, table: Table, cand: str, inc: str, task_ids: Sequence[str], *, stochastic: bool
    ) -> list[Evidence]:
        first = _coverage(table, cand, task_ids)
        if first or not stochastic or self.resamples < 2:
            return first
        wins, losses, _ = paired(table, cand, inc, task_ids)
        differ = wins + losses
        gap = [
            t
            for t in differ
            if missing(table, cand, [t], self.resamples) or missing(table, inc, [t], self.resamples)
        ]
        return [Evidence((cand, inc), tuple(gap), self.resamples)] if gap else []

    def decide(
        self, table: Table, cand: str, inc: str, task_ids: Sequence[str], *, others: Sequence[str]
    ) -> dict[str, Any]:
        if missing(table, cand, task_ids):
            return _incomplete(self.name, table, cand, task_ids)
        wins, losses, ties = paired(table, cand, inc, task_ids)
        compared = len(wins) + len(losses) + len(ties)
        allowed = math.floor(self.regression_allowance * compared)
        p = sign_test_p(len(wins), len(losses))
        stats = {"p_value": p, "alpha": self.alpha, "allowed_losses": allowed}
        if len(losses) > allowed:
            verdict = f"breaks {len(losses)} task(s), more than the {allowed} allowed"
            return _decision(self.name, cand, False, verdict, wins, losses, **stats)
        promoted = p <= self.alpha
        verdict = (
            f"{len(wins)} better, {len(losses)} worse of {compared}: sign test p={p:.3g} "
            f"{'<=' if promoted else '>'} alpha={self.alpha}"
        )
        return _decision(self.name, cand, promoted, verdict, wins, losses, **stats)


@dataclass(frozen=True)
class ParetoGate:
    """GEPA's rule: not dominated by any fully evaluated candidate, and the best mean.

    The candidate must beat the incumbent's mean pass rate on the verified tasks
    and have the highest mean among the other candidates evaluated on all of
    them; ties keep the incumbent.
    """

    name: str = "pareto"

    def evidence(
        self, table: Table, cand: str, inc: str, task_ids: Sequence[str], *, stochastic: bool
    ) -> list[Evidence]:
        return _coverage(table, cand, task_ids)

    def decide(
        self, table: Table, cand: str, inc: str, task_ids: Sequence[str], *, others: Sequence[str]
    ) -> dict[str, Any]:
        if missing(table, cand, task_ids):
            return _incomplete(self.name, table, cand, task_ids)
        wins, losses, _ = paired(table, cand, inc, task_ids)
        mine, theirs = mean_score(table, cand, task_ids), mean_score(table, inc, task_ids)
        full = [o for o in others if o not in (cand, inc) and not missing(table, o, task_ids)]
        stats = {"mean": mine, "incumbent_mean": theirs}
        dominator = next((o for o in full if dominates(table, o, cand, task_ids)), None)
        better = next((o for o in full if mean_score(table, o, task_ids) > mine), None)
        if dominator is not None:
            reason = f"dominated on the per-task front by {dominator}"
        elif mine <= theirs:
            reason = f"mean {mine:.3f} does not beat the incumbent's {theirs:.3f}"
        elif better is not None:
            reason = f"{better} has a higher mean on the same tasks"
        else:
            reason = f"on the front with the best mean {mine:.3f} (incumbent {theirs:.3f})"
            return _decision(self.name, cand, True, reason, wins, losses, **stats)
        return _decision(self.name, cand, False, reason, wins, losses, **stats)


GATES: Mapping[str, type[StrictGate] | type[StatisticalGate] | type[ParetoGate]] = {
    "strict": StrictGate,
    "statistical": StatisticalGate,
    "pareto": ParetoGate,
}


def resolve_gate(gate: str | PromotionPolicy) -> PromotionPolicy:
    """A policy from its name (``strict``, ``statistical``, ``pareto``) or an instance."""
    if isinstance(gate, str):
        if gate not in GATES:
            raise UnknownPluginError("gate", gate, list(GATES))
        made: PromotionPolicy = GATES[gate]()
        return made
    if not isinstance(gate, PromotionPolicy):
        raise ConfigurationError(f"{gate!r} is not a promotion policy")
    return gate


def counterfactuals(
    chosen: str,
    table: Table,
    cand: str,
    inc: str,
    task_ids: Sequence[str],
    *,
    others: Sequence[str],
    stochastic: bool,
) -> dict[str, dict[str, Any]]:
    """What every other shipped gate decides on the evidence the chosen one gathered.

    Recorded beside each decision so one run answers "would ``strict`` have
    promoted this?" without paying for three runs. A gate that would first ask
    for more evidence (a second sample, say) gets ``promoted: None``: the table
    cannot say what it would have done.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, make in GATES.items():
        if name == chosen:
            continue
        gate: PromotionPolicy = make()
        if gate.evidence(table, cand, inc, task_ids, stochastic=stochastic):
            out[name] = {"promoted": None, "reason": "would ask for more evidence first"}
            continue
        verdict = gate.decide(table, cand, inc, task_ids, others=others)
        out[name] = {"promoted": bool(verdict["promoted"]), "reason": str(verdict["reason"])}
    return out


def values(table: Table, cid: str, task_ids: Sequence[str]) -> dict[str, float]:
    """Per-task pass rates of ``cid`` (for reports)."""
    cells = table.get(cid, {})
    return {t: value(cells.get(t)) for t in task_ids if t in cells}


EDIT_CHURN = 0.16  # share of outcomes one prompt edit flips (measured on HumanEval, see README)


def promotion_rate(
    policy: PromotionPolicy, n_tasks: int, effect: float, churn: float = EDIT_CHURN
) -> float:
    """The share of edits ``policy`` promotes on ``n_tasks`` verified tasks, exactly, when
    an edit flips ``churn`` of the outcomes with a true net ``effect`` (pass@1 gained):
    each task independently a win with probability ``(churn + effect) / 2``, a loss with
    ``(churn - effect) / 2``, else a tie; one sample a cell, no other candidate. The
    policy's own ``decide`` judges every (wins, losses) split; splits less likely than
    1e-9 in all are left out. ``benchmarks/gate_power.py`` prints it by task-set size.
    """
    p_win, p_loss = (churn + effect) / 2, (churn - effect) / 2
    if n_tasks < 1 or p_win < 0 or p_loss < 0 or p_win + p_loss > 1:
        raise ConfigurationError(f"effect {effect:+.3f} does not fit churn {churn:.3f}")
    tasks = [f"t{i}" for i in range(n_tasks)]

    def cell(passed: bool) -> dict[str, Any]:
        return {"passed": passed, "passes": int(passed), "n": 1}

    def binom(k: int, n: int, p: float) -> float:
        return math.comb(n, k) * p**k * (1 - p) ** (n - k)

    p_flip = p_win + p_loss
    q = p_win / p_flip if p_flip else 0.0
    total = 0.0
    for flips in range(n_tasks + 1):
        p_d = binom(flips, n_tasks, p_flip)
        if p_d < 1e-12:
            continue
        for wins in range(flips + 1):
            p = p_d * binom(wins, flips, q)
            if p < 1e-12:
                continue
            inc = {t: cell(i >= wins) for i, t in enumerate(tasks)}
            cand = {t: cell(i < wins or i >= flips) for i, t in enumerate(tasks)}
            table = {"inc": inc, "cand": cand}
            if policy.decide(table, "cand", "inc", tasks, others=["inc", "cand"])["promoted"]:
                total += p
    return total
