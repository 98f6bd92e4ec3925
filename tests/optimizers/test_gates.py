"""Promotion policies on hand-made score tables, including the noisy cases."""

from __future__ import annotations

from typing import Any

import pytest

from sipdo.errors import ConfigurationError, UnknownPluginError
from sipdo.plugins.optimizers.gates import (
    Evidence,
    ParetoGate,
    StatisticalGate,
    StrictGate,
    counterfactuals,
    promotion_rate,
    resolve_gate,
    sign_test_p,
)


def cell(passed: bool, n: int = 1, passes: int | None = None) -> dict[str, Any]:
    got = (n if passed else 0) if passes is None else passes
    return {"passed": got == n, "passes": got, "n": n, "score": got / n}


def table(inc: list[bool], cand: list[bool], **others: list[bool]) -> dict[str, Any]:
    rows = {"inc": inc, "cand": cand, **others}
    return {cid: {f"t{i}": cell(v) for i, v in enumerate(vals)} for cid, vals in rows.items()}


def tasks(n: int) -> list[str]:
    return [f"t{i}" for i in range(n)]


# 30 fixes and 1 regression on 40 tasks (the incumbent solved 10 of them).
BIG_INC = [False] * 30 + [True] * 10
BIG_CAND = [True] * 30 + [False] + [True] * 9
# Better on 2 of 8 and worse on 2 of 8: noise.
NOISY_INC = [False, False, True, True, True, False, True, False]
NOISY_CAND = [True, True, False, False, True, False, True, False]


def test_better_on_30_losing_1_passes_statistical_and_fails_strict() -> None:
    t = table(BIG_INC, BIG_CAND)
    strict = StrictGate().decide(t, "cand", "inc", tasks(40), others=[])
    stat = StatisticalGate().decide(t, "cand", "inc", tasks(40), others=[])
    assert not strict["promoted"]
    assert "breaks 1" in strict["reason"]
    assert stat["promoted"]
    assert len(stat["wins"]) == 30
    assert stat["losses"] == ["t30"]
    assert stat["stats"]["p_value"] < 1e-7


def test_two_better_two_worse_of_8_passes_neither() -> None:
    t = table(NOISY_INC, NOISY_CAND)
    for gate in (StrictGate(), StatisticalGate(), ParetoGate()):
        decision = gate.decide(t, "cand", "inc", tasks(8), others=["inc", "cand"])
        assert not decision["promoted"], (gate.name, decision)


def test_strict_is_the_papers_rule() -> None:
    fixes_one = table([False, True], [True, True])
    fixes_none = table([False, True], [False, True])
    assert StrictGate().decide(fixes_one, "cand", "inc", tasks(2), others=[])["promoted"]
    decision = StrictGate().decide(fixes_none, "cand", "inc", tasks(2), others=[])
    assert not decision["promoted"]
    assert "fixes no failure" in decision["reason"]


def test_statistical_needs_enough_evidence_on_few_tasks() -> None:
    # 3 fixes, no regression: p = 1/8 > 0.05 -> the policy waits for more evidence
    t = table([False] * 3 + [True] * 5, [True] * 8)
    decision = StatisticalGate().decide(t, "cand", "inc", tasks(8), others=[])
    assert not decision["promoted"]
    assert decision["stats"]["p_value"] == pytest.approx(0.125)
    # 5 fixes, no regression: p = 1/32 <= 0.05
    t = table([False] * 5 + [True] * 3, [True] * 8)
    assert StatisticalGate().decide(t, "cand", "inc", tasks(8), others=[])["promoted"]


def test_statistical_regression_allowance() -> None:
    # 25 fixes but 3 regressions of 30 compared: allowance floor(0.1 * 30) = 3 -> allowed
    inc = [False] * 25 + [True] * 5
    cand = [True] * 25 + [False] * 3 + [True] * 2
    assert StatisticalGate().decide(table(inc, cand), "cand", "inc", tasks(30), others=[])[
        "promoted"
    ]
    # the same with no allowance
    strict_stat = StatisticalGate(regression_allowance=0.0)
    decision = strict_stat.decide(table(inc, cand), "cand", "inc", tasks(30), others=[])
    assert not decision["promoted"]
    assert "more than the 0 allowed" in decision["reason"]


def test_no_decision_without_full_evidence() -> None:
    t = table([False, True, True], [True, True])  # cand has no cell on t2
    for gate in (StrictGate(), StatisticalGate(), ParetoGate()):
        assert gate.evidence(t, "cand", "inc", tasks(3), stochastic=False) == [
            Evidence(("cand",), ("t2",))
        ]
        decision = gate.decide(t, "cand", "inc", tasks(3), others=[])
        assert not decision["promoted"]
        assert "not evaluated on 1" in decision["reason"]


def test_statistical_resamples_disagreements_for_a_stochastic_learner() -> None:
    t = table([False, True, True, False], [True, True, False, False])
    gate = StatisticalGate()
    assert gate.evidence(t, "cand", "inc", tasks(4), stochastic=False) == []
    wanted = gate.evidence(t, "cand", "inc", tasks(4), stochastic=True)
    assert wanted == [Evidence(("cand", "inc"), ("t0", "t2"), 2)]
    # once both have 2 samples there, nothing more is asked
    for cid in ("cand", "inc"):
        for tid in ("t0", "t2"):
            old = t[cid][tid]
            t[cid][tid] = cell(bool(old["passes"]), n=2, passes=2 * old["passes"])
    assert gate.evidence(t, "cand", "inc", tasks(4), stochastic=True) == []


def test_pareto_promotes_the_best_front_member_only() -> None:
    t = table(
        [True, False, False, False],
        [True, True, True, False],  # mean 0.75
        other=[True, True, False, True],  # mean 0.75, not dominated either
        best=[True, True, True, True],  # dominates both
    )
    ids = ["inc", "cand", "other", "best"]
    decision = ParetoGate().decide(t, "cand", "inc", tasks(4), others=ids)
    assert not decision["promoted"]
    assert "dominated" in decision["reason"]
    assert "best" in decision["reason"]
    assert ParetoGate().decide(t, "best", "inc", tasks(4), others=ids)["promoted"]
    tie = ParetoGate().decide(
        table([True, False], [False, True]), "cand", "inc", tasks(2), others=["inc", "cand"]
    )
    assert not tie["promoted"]  # same mean: the incumbent stays


def test_sign_test_values() -> None:
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 0) == pytest.approx(1 / 32)
    assert sign_test_p(2, 2) == pytest.approx(11 / 16)


def test_resolve_gate() -> None:
    assert resolve_gate("pareto").name == "pareto"
    gate = StatisticalGate(alpha=0.1)
    assert resolve_gate(gate) is gate
    with pytest.raises(UnknownPluginError, match="available: pareto, statistical, strict"):
        resolve_gate("lenient")
    with pytest.raises(ConfigurationError):
        StatisticalGate(alpha=1.5)
    with pytest.raises(ConfigurationError, match="not a promotion policy"):
        resolve_gate(42)  # type: ignore[arg-type]


def test_counterfactuals_say_what_the_other_gates_decide_on_the_same_evidence() -> None:
    t = table(BIG_INC, BIG_CAND)
    seen = counterfactuals("pareto", t, "cand", "inc", tasks(40), others=[], stochastic=False)
    assert set(seen) == {"strict", "statistical"}
    assert seen["strict"]["promoted"] is False
    assert "breaks 1" in seen["strict"]["reason"]
    assert seen["statistical"]["promoted"] is True
    # A stochastic learner: the statistical gate would resample the 31 differing
    # tasks first, so the table cannot say what it would decide.
    later = counterfactuals("strict", t, "cand", "inc", tasks(40), others=[], stochastic=True)
    assert set(later) == {"statistical", "pareto"}
    assert later["statistical"]["promoted"] is None
    assert later["pareto"]["promoted"] is True


@pytest.mark.parametrize("n", [10, 40, 150])
def test_promotion_rate_of_an_edit_that_changes_nothing_is_within_alpha(n: int) -> None:
    gate = StatisticalGate()
    assert promotion_rate(gate, n, 0.0) <= gate.alpha
    assert promotion_rate(gate, n, -0.05) <= promotion_rate(gate, n, 0.0)


def test_promotion_rate_grows_with_the_tasks_and_the_effect() -> None:
    gate = StatisticalGate()
    rates = [promotion_rate(gate, n, 0.05) for n in (20, 40, 100, 200)]
    assert rates == sorted(rates)
    assert rates[0] < 0.05 < 0.4 < rates[-1]
    assert promotion_rate(gate, 40, 0.10) > promotion_rate(gate, 40, 0.05)


def test_promotion_rate_of_the_strict_gate_is_its_closed_form() -> None:
    # strict ships iff no loss and at least one win: (1 - p_loss)^n - (1 - p_win - p_loss)^n
    n, churn, effect = 30, 0.2, 0.06
    p_win, p_loss = (churn + effect) / 2, (churn - effect) / 2
    exact = (1 - p_loss) ** n - (1 - p_win - p_loss) ** n
    assert promotion_rate(StrictGate(), n, effect, churn) == pytest.approx(exact, rel=1e-6)


def test_promotion_rate_refuses_an_effect_larger_than_the_churn() -> None:
    with pytest.raises(ConfigurationError, match="does not fit"):
        promotion_rate(StatisticalGate(), 40, 0.2, 0.1)
