"""How many verified tasks a promotion gate needs to see a real improvement (a model).

Every prompt edit flips outcomes both ways: measured here, ~16% of HumanEval
outcomes per hand-written edit, and 12-25% for the local optimizer's candidates
on 40 held-out problems (``benchmarks/regrade.py``). A candidate is modelled by
that *churn* ``c`` (the share of tasks whose outcome flips) and its true net
effect ``d`` (points of pass@1): on each task, independently, it wins with
probability ``(c + d) / 2``, loses with ``(c - d) / 2`` and ties otherwise.
Each shipped gate (``strict``, ``statistical``, ``pareto``; the real
``decide`` on a one-sample score table, no other candidate) then decides on ``n``
tasks, and the table prints how often it promotes, computed exactly over every
split of wins and losses (``sipdo.plugins.optimizers.gates.promotion_rate``; with
``--simulate TRIALS`` also by drawing tables, in brackets, as a check):

- for ``d > 0``: the power (how often a real improvement ships);
- for ``d <= 0``: the false promotion rate (how often a useless or harmful
  edit ships).

A controlled simulation: it says what a gate can tell apart on a task set of
a given size, not what any strategy proposes. ::

    python benchmarks/gate_power.py
    python benchmarks/gate_power.py --tasks 40,100,400 --effects -5,0,5,10 --churn 0.16
    python benchmarks/gate_power.py --simulate 2000
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

from sipdo.plugins.optimizers.gates import GATES, promotion_rate


def draw(rng: random.Random, n: int, churn: float, effect: float) -> dict[str, Any]:
    """A one-sample score table for an incumbent and a candidate on ``n`` tasks."""
    win = (churn + effect) / 2
    lose = (churn - effect) / 2
    if win < 0 or lose < 0 or win + lose > 1:
        raise ValueError(f"effect {effect:+.2f} does not fit churn {churn:.2f}")
    inc: dict[str, Any] = {}
    cand: dict[str, Any] = {}
    for i in range(n):
        u = rng.random()
        base = rng.random() < 0.5  # the incumbent's outcome where the two tie
        if u < win:
            a, b = False, True
        elif u < win + lose:
            a, b = True, False
        else:
            a = b = base
        inc[f"t{i}"] = {"passed": a, "passes": int(a), "n": 1}
        cand[f"t{i}"] = {"passed": b, "passes": int(b), "n": 1}
    return {"inc": inc, "cand": cand}


def promote_rate(gate: Any, n: int, churn: float, effect: float, trials: int, seed: int) -> float:
    rng = random.Random(seed)
    tasks = [f"t{i}" for i in range(n)]
    promoted = 0
    for _ in range(trials):
        table = draw(rng, n, churn, effect)
        promoted += bool(
            gate.decide(table, "cand", "inc", tasks, others=["inc", "cand"])["promoted"]
        )
    return promoted / trials


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="20,40,100,200,400", help="task-set sizes")
    parser.add_argument("--effects", default="-5,0,5,10", help="true net effects, points")
    parser.add_argument("--churn", type=float, default=0.16, help="share of outcomes flipped")
    parser.add_argument(
        "--simulate", type=int, default=0, metavar="TRIALS", help="also draw TRIALS tables a cell"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.tasks.split(",") if x]
    effects = [float(x) for x in args.effects.split(",") if x]
    how = f"; in brackets, {args.simulate} drawn tables a cell" if args.simulate else ""
    print(
        f"a model, not a run: churn {args.churn:.0%} of outcomes per edit; "
        f"share of edits promoted{how}"
    )
    header = ["gate", "true effect"] + [f"n={n}" for n in sizes]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, make in GATES.items():
        gate = make()
        for effect in effects:
            cells = []
            for n in sizes:
                cell = f"{promotion_rate(gate, n, effect / 100, args.churn):.2f}"
                if args.simulate:
                    drawn = promote_rate(
                        gate, n, args.churn, effect / 100, args.simulate, args.seed
                    )
                    cell += f" ({drawn:.2f})"
                cells.append(cell)
            label = "power" if effect > 0 else "false promotions"
            print(f"| {name} | {effect:+.0f} pts ({label}) | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
