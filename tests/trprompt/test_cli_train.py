"""``sipdo train-prompt-model`` as a real subprocess: trains, resumes, reports the rounds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sipdo.store import RunStore
from tests.trprompt.kit import SEEDS, record_run

SIPDO = Path(sys.executable).with_name("sipdo")


def learner_script(path: Path) -> str:
    """A ``scripted:`` learner answering every seed task with its reference."""
    rules = [
        {
            "match": f"def {t['entry_point']}(",
            "response": f"```python\n{t['reference_solution']}```",
        }
        for t in SEEDS
    ]
    path.write_text(json.dumps({"rules": rules}), "utf-8")
    return f"scripted:{path}"


def sipdo(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPDO_")}
    env.update({"SIPDO_HOME": str(home), "COLUMNS": "200"})
    return subprocess.run(
        [str(SIPDO), *args], capture_output=True, text=True, env=env, timeout=900, check=False
    )


def test_train_prompt_model_command_trains_and_resumes(tmp_path: Path, base_dir: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    with RunStore(db) as store:
        record_run(store)
    out = tmp_path / "pm"
    common = [
        "run-1",
        "-o",
        str(out),
        "--base-model",
        str(base_dir),
        "--model",
        learner_script(tmp_path / "learner.json"),
        "--min-rewards",
        "4",
        "--epochs",
        "1",
        "--learning-rate",
        "0.01",
        "--max-new-tokens",
        "12",
        "--sandbox",
        "process",
        "--db",
        db,
    ]
    first = sipdo(tmp_path / "home", "train-prompt-model", *common, "--rounds", "1")
    assert first.returncode == 0, first.stderr
    assert "round 1: LoRA fine-tuning (12)" in first.stderr  # plain progress off a terminal
    assert "round 1 done: loss" in first.stderr
    assert "prompt model rounds" in first.stdout
    assert f"prompt model: {out}" in first.stdout
    second = sipdo(tmp_path / "home", "train-prompt-model", *common, "--rounds", "2")
    assert second.returncode == 0, second.stderr
    assert "round 1: LoRA" not in second.stderr, "round 1 must not be trained again"
    assert "round 2: prompts for training queries (6)" in second.stderr
    with RunStore(db) as store:
        rounds = store.prompt_model_rounds("run-1")
    assert [(r.round, r.heldout_tasks, r.heldout_pass_rate) for r in rounds] == [
        (1, 2, 1.0),
        (2, 2, 1.0),
    ]
    assert all(r.output_dir == str(out.resolve()) for r in rounds)
