"""`sipdo run --domain plan` and `--domain qa` from the CLI, with the shipped seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sipdo.plugins.domains.plan import PlanDomain
from sipdo.plugins.domains.qa import QADomain
from tests.domains import plans
from tests.domains.test_plan_domain import NEW_TASK as NEW_PLAN_TASK
from tests.domains.test_qa_domain import NEW as NEW_QA_TASK

SIPDO = Path(sys.executable).with_name("sipdo")
ROOT = Path(__file__).resolve().parents[2]


def rules(*pairs: tuple[list[str], Any]) -> dict[str, Any]:
    return {"rules": [{"match": m, "response": r} for m, r in pairs]}


def optimizer(prompt: str) -> dict[str, Any]:
    return rules(
        (["Step 1, error analysis"], {"failure_modes": [{"pattern": "p", "cause": "c"}]}),
        (["Step 2"], {"recommendations": ["say what to check"]}),
        (["Step 3"], {"prompt": prompt, "rationale": "r"}),
    )


def sipdo_run(tmp_path: Path, domain: str, scripts: dict[str, Any]) -> str:
    args = [str(SIPDO), "run", "--domain", domain, "--iterations", "1", "--sandbox", "process"]
    # A handful of shipped seeds and one new task: fewer fixes than the default gate's sign
    # test can tell from noise. The story is the domain in the loop, under the paper's gate
    # and strategy (the optimizer's script answers sipdo's three requests).
    args += ["--gate", "strict", "--strategy", "sipdo"]
    for role, script in scripts.items():
        path = tmp_path / f"{role}.json"
        path.write_text(json.dumps(script))
        flag = "--model" if role == "learner" else f"--{role}-model"
        args += [flag, f"scripted:{path}"]
    args += ["--db", f"sqlite:///{tmp_path / 'runs.db'}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPDO_")}
    # The worktree's sipdo first, so the subprocess runs the code under test.
    env.update(SIPDO_HOME=str(tmp_path / "home"), COLUMNS="200", PYTHONPATH=str(ROOT))
    done = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_sipdo_run_domain_plan(tmp_path: Path) -> None:
    marker = "Verify every claim with verify_claim and check every source."
    fenced = "```python\n{}```"
    out = sipdo_run(
        tmp_path,
        "plan",
        {
            "learner": rules(
                ([marker], fenced.format(plans.REFERENCE)), ([], fenced.format(plans.SEED_EXAMPLE))
            ),
            "generator": rules(([], json.dumps(NEW_PLAN_TASK))),
            "checker": rules(([], fenced.format(plans.REFERENCE))),
            "optimizer": optimizer(f"{PlanDomain.default_prompt} {marker}"),
        },
    )
    assert "no --prompt given: optimizing the default prompt" in out
    assert PlanDomain.default_prompt in out
    assert "run ended: iterations" in out
    assert "tasks accepted 1" in out
    assert marker in out  # the best prompt is shown


def test_sipdo_run_domain_qa(tmp_path: Path) -> None:
    marker = "Write every relation as a chain."
    questions = [*QADomain().seed_tasks(), {**NEW_QA_TASK}]
    right = [([t["question"]], f"ANSWER: {t['answer']}") for t in questions]
    wrong = [([t["question"]], "ANSWER: Tom") for t in questions if "older" in t["question"]]
    out = sipdo_run(
        tmp_path,
        "qa",
        {
            "learner": rules(*[([marker, *m], r) for m, r in right], *wrong, *right),
            "generator": rules(([], json.dumps(NEW_QA_TASK))),
            "checker": rules(*right),
            "optimizer": optimizer(f"{QADomain.default_prompt} {marker}"),
        },
    )
    assert "run ended: iterations" in out
    assert "tasks accepted 1" in out
    assert marker in out
