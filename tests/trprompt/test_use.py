"""Using a trained prompt model: in the graph, in held-out evaluation, from the CLI.

The prompt model is the tiny random model after one real LoRA round (the
``trained`` fixture); the learner is scripted, the grading real (process sandbox).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sipdo.cli import app
from sipdo.errors import ConfigurationError
from sipdo.evaluation import aevaluate_prompt
from sipdo.graph import Budget, create_sipdo_graph
from sipdo.sandbox import Sandbox
from sipdo.store import RunStore
from sipdo.trprompt import PromptModel, read_manifest
from sipdo.trprompt.dataset import task_key
from sipdo.trprompt.writer import CACHE_FILE, task_query
from sipdo.verifiers import CodeTask
from tests.graph import world
from tests.trprompt.kit import SEEDS, V0

runner = CliRunner()
INITIAL = "You write Python functions."
CANDIDATE = "Check every edge case. FIX"


def make_graph(sandbox: Sandbox, store: RunStore, learner: Any, prompt_model: Any) -> Any:
    return create_sipdo_graph(
        learner,
        generator_model=world.generator_model(world.CLAMP),
        checker_model=world.checker_model(),
        optimizer_model=world.optimizer_model(CANDIDATE),
        domain=world.domain(),
        sandbox=sandbox,
        run_store=store,
        budget=Budget(iterations=1, tasks_per_iteration=1, max_refinements=1),
        prompt_model=prompt_model,
    )


def test_the_graph_learner_answers_under_the_prompt_models_prompts(
    trained: Path, process_sandbox: Sandbox, tmp_path: Path
) -> None:
    seeds = [world.SEEDS["rotate_left"], world.SEEDS["chunk"]]
    learner = world.learner_model()
    with RunStore(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        out = make_graph(
            sandbox=process_sandbox, store=store, learner=learner, prompt_model=trained
        )
        final = out.invoke(
            {"prompt": INITIAL, "seed_tasks": seeds}, {"configurable": {"thread_id": "r1"}}
        )
        usage = [u for u in store.usage("r1") if u.role == "prompt_model"]

    # Every learner call's system prompt is what the prompt model writes for that task
    # from the prompt version it was solving under (the initial one or the optimizer's).
    fresh = PromptModel.load(trained, cache=False)  # generates again: same seed, same prompt
    tasks = {t["entry_point"]: t for t in [*seeds, world.CLAMP]}
    expected = {
        (entry, instructions): fresh.compose(task_query(task), instructions=instructions).prompt
        for entry, task in tasks.items()
        for instructions in (INITIAL, CANDIDATE)
    }
    for call in learner.calls:
        entry = world.entry_point_of(call.messages)
        system = str(call.messages[0].content)
        match = [k for k, v in expected.items() if k[0] == entry and v == system]
        assert match, f"learner saw a prompt the prompt model did not write: {system!r}"
        assert system not in (INITIAL, CANDIDATE)
    cached = [json.loads(line)["key"] for line in (trained / "round-1" / CACHE_FILE).open()]
    asked = {
        instructions
        for task in tasks.values()
        for instructions in (INITIAL, CANDIDATE)
        if fresh.cache_key(task_query(task), fresh.optimal_reward, instructions) in cached
    }
    assert asked == {INITIAL, CANDIDATE}, "the optimizer's instructions must reach the model"

    # Its generations are calls of their own role, in the budget and the run store.
    generated = final["budget_used"]["model_calls"]["prompt_model"]
    assert generated == sum(u.calls for u in usage) >= 2
    assert all(u.model.startswith("prompt-model:") for u in usage)
    assert len(cached) == len(set(cached)) == generated  # each (task, instructions) written once

    # A second run over the same tasks and prompts asks the model nothing: all cached on disk.
    again = world.learner_model()
    with RunStore(f"sqlite:///{tmp_path / 'runs2.db'}") as store:
        final2 = make_graph(process_sandbox, store, again, trained).invoke(
            {"prompt": INITIAL, "seed_tasks": seeds}, {"configurable": {"thread_id": "r2"}}
        )
    assert final2["budget_used"]["model_calls"].get("prompt_model", 0) == 0
    assert [str(c.messages[0].content) for c in again.calls[:2]] == [
        str(c.messages[0].content) for c in learner.calls[:2]
    ]


async def test_evaluation_with_a_prompt_model_and_its_held_out_check(
    trained: Path, process_sandbox: Sandbox
) -> None:
    manifest = read_manifest(trained)
    assert manifest is not None
    by_key = {task_key(t): t for t in SEEDS}
    held = [CodeTask.model_validate(by_key[k]) for k in manifest.heldout_keys]
    writer = PromptModel.load(trained)
    learner = world.learner_model()
    result = await aevaluate_prompt(
        V0, learner, held, sandbox=process_sandbox, prompt_model=writer, domain=world.domain()
    )
    assert result.samples == len(held)
    written = {
        writer.compose(task_query(t.model_dump(mode="json")), instructions=V0).prompt for t in held
    }
    assert {str(c.messages[0].content) for c in learner.calls} <= written
    plain = await aevaluate_prompt(V0, world.learner_model(), held, sandbox=process_sandbox)
    assert plain.eval_id != result.eval_id  # the prompt model is part of the eval's identity

    trained_on = [CodeTask.model_validate(by_key[k]) for k in manifest.train_keys[:2]]
    with pytest.raises(ConfigurationError, match="are training queries of prompt model"):
        await aevaluate_prompt(
            V0, learner, trained_on, sandbox=process_sandbox, prompt_model=writer
        )


def test_run_refuses_a_missing_or_damaged_prompt_model_before_starting(
    trained: Path, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    common = ["run", "--iterations", "1", "--sandbox", "process", "--db", db, "--prompt-model"]
    result = runner.invoke(app, [*common, str(tmp_path / "nowhere")])
    assert result.exit_code == 1, result.output
    assert "no such directory" in result.output
    assert "train-prompt-model" in result.output

    config = (trained / "round-1" / "adapter" / "adapter_config.json").read_text("utf-8")
    (trained / "round-1" / "adapter" / "adapter_config.json").write_text("{not json", "utf-8")
    result = runner.invoke(app, [*common, str(trained)])
    assert result.exit_code == 1, result.output
    assert "round 1's adapter is missing or corrupt" in result.output

    (trained / "round-1" / "adapter" / "adapter_config.json").write_text(config, "utf-8")
    weights = trained / "round-1" / "adapter" / "adapter_model.safetensors"
    whole = weights.read_bytes()
    for damaged, why in ((whole[:-16], "truncated"), (b"\xff" * 64, "header of")):
        weights.write_bytes(damaged)
        result = runner.invoke(app, [*common, str(trained)])
        assert result.exit_code == 1, result.output
        assert "adapter weights are corrupt" in result.output
        assert why in " ".join(result.output.split())
    weights.write_bytes(whole)

    (trained / "round-1" / "adapter" / "adapter_config.json").unlink()
    result = runner.invoke(app, ["eval", "--tasks", str(tmp_path / "t.jsonl"), "--db", db,
                                 "--prompt-model", str(trained)])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "adapter is missing or corrupt" in result.output
    with RunStore(db) as store:
        assert store.list_runs() == []  # nothing was started or recorded


def test_prompt_model_without_the_train_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, trained: Path, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    result = runner.invoke(
        app, ["run", "--db", f"sqlite:///{tmp_path / 'r.db'}", "--prompt-model", str(trained)]
    )
    assert result.exit_code == 1, result.output
    assert "--prompt-model (using a trained prompt model) needs the `train` extra" in result.output
    assert "pip install" in result.output
    assert "sipdo[train]" in result.output


def test_importing_sipdo_imports_no_torch() -> None:
    code = (
        "import sys, sipdo, sipdo.cli, sipdo.graph, sipdo.evaluation, sipdo.trprompt\n"
        "from sipdo.trprompt import writer\n"
        "print(json.dumps([m for m in ('torch', 'transformers', 'peft') if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(out.stdout) == []
