"""``sipdo run`` options become the run's budget and survive a resume."""

from __future__ import annotations

from dataclasses import asdict

from typer.testing import CliRunner

from sipdo.cli import app
from sipdo.cli.run import RunOptions, _budget
from sipdo.graph import Budget


def test_loop_shape_options_reach_the_budget_and_round_trip() -> None:
    opts = RunOptions().overridden_by(
        {"iterations": 1, "tasks_per_iteration": 1, "max_refinements": 2, "max_tokens": None}
    )
    budget = _budget(opts)
    assert (budget.iterations, budget.tasks_per_iteration, budget.max_refinements) == (1, 1, 2)
    assert RunOptions.from_saved(asdict(opts)) == opts  # what --resume rebuilds


def test_unset_options_keep_the_budget_defaults() -> None:
    budget, default = _budget(RunOptions()), Budget()
    assert budget.tasks_per_iteration == default.tasks_per_iteration
    assert budget.max_refinements == default.max_refinements


def test_zero_tasks_per_iteration_is_refused_before_anything_runs() -> None:
    result = CliRunner().invoke(app, ["run", "--tasks-per-iteration", "0"])
    assert result.exit_code == 2
    assert "tasks-per-iteration" in result.output


def test_gate_and_seed_round_trip_and_the_estimate_counts_every_role() -> None:
    from sipdo.graph.budget import estimate_calls
    from sipdo.plugins.optimizers.sipdo import SipdoStrategy

    assert RunOptions().gate == "statistical"  # the default the measurements chose
    opts = RunOptions().overridden_by({"gate": "strict", "seed": 7})
    assert (opts.gate, opts.seed) == ("strict", 7)
    assert RunOptions.from_saved(asdict(opts)) == opts
    budget = Budget(iterations=2, tasks_per_iteration=1, max_refinements=2)
    calls = estimate_calls(budget, n_seeds=8, per_step=SipdoStrategy().estimate_calls)
    # 8 seeds; per iteration 1 generated task (generator, checker, learner) and 2 steps of
    # up to 4 optimizer calls plus one learner call per verified task (9, then 10 tasks)
    assert calls == {
        "learner": 8 + 2 + 2 * 9 + 2 * 10,
        "generator": 2,
        "checker": 2,
        "optimizer": 16,
    }
    # with demonstrations a step may also evaluate the incumbent with its demos changed
    with_demos = estimate_calls(
        budget, n_seeds=8, per_step=SipdoStrategy().estimate_calls, demonstrations=3
    )
    assert with_demos["learner"] == calls["learner"] + 2 * 9 + 2 * 10
    assert {r: n for r, n in with_demos.items() if r != "learner"} == {
        r: n for r, n in calls.items() if r != "learner"
    }


def test_the_estimate_says_what_the_gate_can_see_on_the_seed_tasks() -> None:
    from sipdo.cli.run import POWER_MAX_TASKS, gate_power_line

    eight, forty = gate_power_line("statistical", 8), gate_power_line("statistical", 40)
    assert eight is not None
    assert forty is not None
    assert "gate power on 8 verified task(s)" in eight
    assert "ships a real +5-point edit 0% of the time" in eight  # too few tasks for the test
    assert "+5-point edit 9% of the time, a +10-point one 30%" in forty
    assert "changes nothing 42%" in (gate_power_line("pareto", 40) or "")
    assert gate_power_line("statistical", POWER_MAX_TASKS + 1) is None
    assert gate_power_line("statistical", 0) is None
    assert gate_power_line("my.custom:Gate", 40) is None
