"""Best-arm identification for beam selection: UCB and successive rejects. Pure.

ProTeGi scores a beam's candidates ("arms") on random minibatches of tasks
("pulls"); evaluating every candidate on every task is what it avoids. An arm's
pulls are a list of rewards (the mean pass rate on one minibatch).

- ``ucb_pick``: UCB1 — the arms with the highest ``mean + c * sqrt(2 ln t / n)``
  (unpulled arms first), where ``t`` is the number of pulls so far.
- ``successive_rejects``: Audibert & Bubeck (2010) — the budget is split into
  phases; in phase ``k`` each surviving arm is pulled until it has ``n_k``
  pulls, then the worst surviving arm is dropped. ``sr_schedule`` gives ``n_k``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Pulls = Mapping[str, Sequence[float]]


def mean(rewards: Sequence[float]) -> float:
    return sum(rewards) / len(rewards) if rewards else 0.0


def ucb_score(rewards: Sequence[float], t: int, c: float) -> float:
    """UCB1 index of one arm after ``t`` pulls in total (``inf`` when never pulled)."""
    if not rewards:
        return math.inf
    return mean(rewards) + c * math.sqrt(2 * math.log(max(t, 1)) / len(rewards))


def ucb_pick(pulls: Pulls, k: int, c: float = 1.0) -> list[str]:
    """The ``k`` arms with the highest UCB index (ties: fewer pulls, then arm order)."""
    t = sum(len(r) for r in pulls.values())
    order = list(pulls)
    ranked = sorted(
        order, key=lambda a: (-ucb_score(pulls[a], t, c), len(pulls[a]), order.index(a))
    )
    return ranked[:k]


def ranking(pulls: Pulls) -> list[str]:
    """Arms by empirical mean, best first (ties: more pulls, then arm order)."""
    order = list(pulls)
    return sorted(order, key=lambda a: (-mean(pulls[a]), -len(pulls[a]), order.index(a)))


def log_bar(k: int) -> float:
    """Successive rejects' normaliser: 1/2 + sum_{i=2..k} 1/i."""
    return 0.5 + sum(1 / i for i in range(2, k + 1))


def sr_schedule(arms: int, budget: int, keep: int = 1) -> list[int]:
    """Cumulative pulls per surviving arm at the end of each phase (``arms - keep`` phases).

    ``n_k = ceil((budget - arms) / (log_bar(arms) * (arms + 1 - k)))``, at least 1 and
    never decreasing: the first phases are cheap, the survivors are pulled most.
    """
    if arms <= keep:
        return []
    spare = max(budget - arms, 0)
    out: list[int] = []
    for k in range(1, arms - keep + 1):
        n = math.ceil(spare / (log_bar(arms) * (arms + 1 - k)))
        out.append(max(1, n, out[-1] if out else 1))
    return out


def reject_worst(pulls: Pulls, alive: Sequence[str], count: int = 1) -> list[str]:
    """The ``count`` surviving arms to drop: lowest empirical mean (ties: fewer pulls,
    then the later arm)."""
    order = list(alive)
    worst = sorted(order, key=lambda a: (mean(pulls[a]), len(pulls[a]), -order.index(a)))
    return worst[:count]
