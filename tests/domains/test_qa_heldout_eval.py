"""The qa domain's held-out set in ``sipdo eval``: the same path as humaneval (solve
through the domain, grade, store, resume), graded by the qa domain's verifier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sipdo.errors import ConfigurationError
from sipdo.evaluation import holdout_tasks
from sipdo.evaluation.benchmarks import benchmark_domain, domain_benchmark, load_benchmark
from sipdo.graph import Budget, create_sipdo_graph
from sipdo.plugins.domains.qa import QADomain
from sipdo.sandbox import Sandbox
from sipdo.store import RunStore
from sipdo.testing import ScriptedChatModel
from tests.domains.test_qa_domain import MARKER, NEW, _question
from tests.graph import world

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from sipdo.cli import main; main()"]


def sipdo(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPDO_")}
    env |= {"SIPDO_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600, check=False
    )


def test_the_heldout_questions_are_never_seeds() -> None:
    domain = QADomain()
    heldout, seeds = domain_benchmark("qa-heldout"), domain.seed_tasks()
    assert len(heldout) == 6
    assert not {t["id"] for t in heldout} & {t["id"] for t in seeds}
    assert not {domain.dedup_key(t) for t in heldout} & {domain.dedup_key(t) for t in seeds}
    # the held-out spec of sipdo run / eval reads the same set, sliced
    assert holdout_tasks("qa-heldout:2") == heldout[:2]


def test_benchmark_names_say_which_domain_they_belong_to() -> None:
    assert benchmark_domain("humaneval") == "code"
    assert benchmark_domain("qa-heldout") == "qa"
    with pytest.raises(
        ConfigurationError, match=r"unknown benchmark 'mmlu'.*humaneval, qa-heldout"
    ):
        benchmark_domain("mmlu")
    with pytest.raises(ConfigurationError, match="ships no held-out set"):
        domain_benchmark("plan-heldout")
    with pytest.raises(ConfigurationError, match="held-out set of the qa domain"):
        load_benchmark("qa-heldout")


def test_sipdo_eval_grades_a_prompt_on_the_qa_heldout_set(tmp_path: Path) -> None:
    # Right on four questions (in other formats: units, a written date), wrong on two.
    replies = {
        "Who is the lightest?": "Quinn is lightest.\nANSWER: Quinn",
        "Who is the slowest?": "ANSWER: Tia",
        "How much change": "100 - 84 = 16\nANSWER: 16 dollars",
        "grams of flour": "ANSWER: 600",
        "45 days after": "ANSWER: March 27, 2023",
        "On which weekday": "It was a weekend day.",
    }
    script = {"rules": [{"match": m, "response": r} for m, r in replies.items()]}
    (tmp_path / "model.json").write_text(json.dumps(script), "utf-8")
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    args = ["eval", "--benchmark", "qa-heldout", "--prompt", "Answer the question."]
    args += ["--model", f"scripted:{tmp_path / 'model.json'}", "--sandbox", "process"]
    done = sipdo(tmp_path, *args, "--db", db)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 sample(s) to grade" in done.stderr
    assert "the qa domain's verifier" in done.stdout
    assert "66.7%" in done.stdout  # 4 of 6
    assert "4/6 samples, 6 tasks" in done.stdout
    with RunStore(db) as store:
        (ev,) = store.list_evals()
        assert ev.benchmark == "qa-heldout"
        assert ev.config["domain"] == "qa"
        rows = {r.task_id: r for r in store.eval_results(ev.eval_id)}
    assert len(rows) == 6
    wrong = [r for r in rows.values() if not r.full_passed]
    assert sorted(r.feedback for r in wrong) == [
        "wrong answer '600'; the question has one exact answer",
        "wrong answer 'It was a weekend day.'; the question has one exact answer",
    ]
    # The same command resumes the stored eval: nothing is solved again.
    again = sipdo(tmp_path, *args, "--db", db)
    assert again.returncode == 0, again.stderr
    assert "0 sample(s) to grade, 6 kept" in again.stderr


def test_a_domain_and_a_benchmark_of_another_domain_are_refused(tmp_path: Path) -> None:
    done = sipdo(tmp_path, "eval", "--domain", "code", "--benchmark", "qa-heldout", "--prompt", "x")
    assert done.returncode == 1
    assert "benchmark 'qa-heldout' holds qa tasks, not code tasks" in done.stderr


async def test_a_qa_run_tracks_the_heldout_set_and_no_other_role_sees_it(
    sandbox: Sandbox,
) -> None:
    heldout = domain_benchmark("qa-heldout")
    answers = {t["question"]: t["answer"] for t in [*QADomain().seed_tasks(), *heldout]}
    answers[NEW["question"]] = NEW["answer"]
    generator = ScriptedChatModel([json.dumps(NEW)], name="generator")
    checker = ScriptedChatModel(
        responder=lambda m: f"ANSWER: {answers[_question(m)]}", name="checker"
    )
    optimizer = world.optimizer_model(f"Answer the question. {MARKER}, then read off the end.")
    learner = ScriptedChatModel(
        responder=lambda m: f"ANSWER: {answers[_question(m)]}", name="learner"
    )
    graph = create_sipdo_graph(
        learner,
        generator_model=generator,
        checker_model=checker,
        optimizer_model=optimizer,
        domain="qa",
        sandbox=sandbox,
        holdout="qa-heldout:4",
        budget=Budget(iterations=1, tasks_per_iteration=1),
    )
    out = await graph.ainvoke({"prompt": QADomain.default_prompt})
    assert next((h["passed"], h["total"]) for h in out["holdout"]) == (4, 4)
    shown = [t["question"] for t in heldout]
    for model in (generator, checker, optimizer):
        assert not any(q in call.text for call in model.calls for q in shown)
    # the learner met the held-out questions only in the held-out grading
    assert not any(t["question"] in shown for t in out["accepted_tasks"])


def test_a_heldout_set_of_another_domain_is_refused_before_the_run() -> None:
    with pytest.raises(ConfigurationError, match="invalid code task"):
        create_sipdo_graph(ScriptedChatModel([]), domain="code", holdout="qa-heldout")
    with pytest.raises(ConfigurationError, match="is a code task; the qa domain cannot grade it"):
        create_sipdo_graph(ScriptedChatModel([]), domain="qa", holdout="humaneval:1")
