"""``benchmarks/gate_power.py``: the simulated tables behave as the sign test says they must."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from sipdo.plugins.optimizers.gates import GATES, promotion_rate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import gate_power


def test_draws_have_the_asked_churn_and_effect() -> None:
    rng = random.Random(1)
    wins = losses = 0
    for _ in range(50):
        t = gate_power.draw(rng, 200, 0.2, 0.1)
        wins += sum(not t["inc"][k]["passed"] and t["cand"][k]["passed"] for k in t["inc"])
        losses += sum(t["inc"][k]["passed"] and not t["cand"][k]["passed"] for k in t["inc"])
    assert (wins + losses) / 10_000 == pytest.approx(0.2, abs=0.02)
    assert (wins - losses) / 10_000 == pytest.approx(0.1, abs=0.02)


def test_an_effect_that_does_not_fit_the_churn_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        gate_power.draw(random.Random(0), 10, 0.1, 0.2)


def test_the_statistical_gate_holds_its_alpha_and_gains_power_with_tasks() -> None:
    gate = GATES["statistical"]()
    null = gate_power.promote_rate(gate, 100, 0.16, 0.0, 600, seed=3)
    assert null <= 0.08  # alpha 0.05 plus the draws' own error
    small = gate_power.promote_rate(gate, 40, 0.16, 0.10, 400, seed=3)
    large = gate_power.promote_rate(gate, 400, 0.16, 0.10, 400, seed=3)
    assert small < 0.5 < 0.9 < large


def test_the_pareto_gate_ships_edits_that_change_nothing() -> None:
    rate = gate_power.promote_rate(GATES["pareto"](), 100, 0.16, 0.0, 400, seed=5)
    assert 0.3 < rate < 0.6  # about half: a mean that is higher by chance


@pytest.mark.parametrize("name", ["strict", "statistical", "pareto"])
def test_drawn_tables_agree_with_the_exact_rate(name: str) -> None:
    gate = GATES[name]()
    for n, effect in [(20, 0.0), (40, 0.05), (60, 0.10)]:
        drawn = gate_power.promote_rate(gate, n, 0.16, effect, 1500, seed=7)
        assert drawn == pytest.approx(promotion_rate(gate, n, effect), abs=0.04)
