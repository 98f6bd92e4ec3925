"""A run's held-out curve in its report: evaluations recorded by ``sipdo.evaluation``.

The hostile story's store (copied: the session's run stays as it was) gets two
real held-out evaluations through the public evaluation API — the initial
prompt and the final one, graded in the process sandbox on two shipped seed
tasks the run never saw — with a scripted learner that solves them only under
the final prompt. The report must show exactly those numbers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from sipdo.evaluation import evaluate_prompt, load_tasks
from sipdo.plugins.domains.code import CodeDomain
from sipdo.sandbox import Sandbox
from sipdo.store import RunStore
from sipdo.testing import ScriptedChatModel
from tests.cli import scriptworld as story
from tests.report.chromium import visit
from tests.report.conftest import RecordedRun

pytestmark = pytest.mark.slow

HELD_OUT = ("is_balanced", "second_largest")


def held_out_tasks(directory: Path) -> list[Any]:
    rows = [t for t in CodeDomain().seed_tasks() if t["entry_point"] in HELD_OUT]
    path = directory / "heldout.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in rows))
    return load_tasks(path)


def learner(references: dict[str, str]) -> ScriptedChatModel:
    """Right answers only under a prompt holding RULE-DEDUPE (the run's final prompt)."""

    def respond(messages: list[BaseMessage]) -> str:
        text = "\n".join(str(m.content) for m in messages)
        entry = next(e for e in references if f"def {e}(" in text)
        right = "RULE-DEDUPE" in text
        return story.fenced(references[entry] if right else story.wrong(entry))

    return ScriptedChatModel(responder=respond)


def test_heldout_evaluations_are_plotted_and_tabled(
    hostile_run: RecordedRun,
    browser: None,
    process_sandbox: Sandbox,
    tmp_path: Path,
) -> None:
    for file in hostile_run.workdir.glob("runs*.db*"):
        shutil.copy(file, tmp_path / file.name)
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    tasks = held_out_tasks(tmp_path)
    model = learner({t.entry_point: t.reference_solution for t in tasks})
    with RunStore(url) as store:
        versions = store.prompt_lineage(hostile_run.run_id)
        first, final = versions[0], [v for v in versions if v.accepted][-1]
        for version in (first, final):
            evaluate_prompt(
                version.text,
                model,
                tasks,
                sandbox=process_sandbox,
                store=store,
                benchmark="seeds-held-out",
                source_run_id=hostile_run.run_id,
                source_version=version.version_id,
                source_iteration=version.iteration,
            )
        curve = store.heldout_curve(hostile_run.run_id)
    assert [(p["version_id"], p["passed"], p["total"]) for p in curve] == [
        (first.version_id, 0, 2),
        (final.version_id, 2, 2),
    ]

    page = tmp_path / "report.html"
    done = hostile_run.sipdo("report", hostile_run.run_id, "--db", url, "-o", str(page))
    assert done.returncode == 0, done.stderr
    assert "held-out pass@1 0.000 -> 1.000" in done.stderr

    seen = visit(page)

    assert seen.ready == "6"
    assert seen.console_errors == []
    assert "0.0% → 100.0%" in seen.text
    assert "seeds-held-out" in seen.text
    assert "No held-out evaluation recorded" not in seen.text
    # The held-out line: one marker per evaluated version on the score plot.
    assert seen.counts["scatter_points"] >= 2
