"""End to end on CPU: a tiny random causal LM trained on a recorded run, round by round."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, SystemMessage

from sipdo.errors import ConfigurationError
from sipdo.plugins.domains.code import CodeDomain
from sipdo.sandbox import Sandbox
from sipdo.store import RunStore
from sipdo.testing import ScriptedChatModel
from sipdo.trprompt import PromptModel, read_manifest, train_prompt_model
from sipdo.trprompt.dataset import task_key
from tests.trprompt.kit import SEEDS, config, record_run, scripted_learner

EVEN = {t["entry_point"] for t in SEEDS[::2]}


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def system_prompts(learner: ScriptedChatModel) -> list[str]:
    return [
        str(m.content)
        for call in learner.calls
        for m in call.messages
        if isinstance(m, SystemMessage)
    ]


def test_one_round_trains_saves_the_adapter_only_and_reloads(
    tmp_path: Path,
    store: RunStore,
    base_dir: Path,
    light_domain: CodeDomain,
    process_sandbox: Sandbox,
) -> None:
    learner = scripted_learner(solved=EVEN)
    events: list[dict[str, Any]] = []
    result = train_prompt_model(
        store,
        ["run-1"],
        tmp_path / "pm",
        config(base_dir, rounds=1),
        learner=learner,
        sandbox=process_sandbox,
        domain=light_domain,
        on_event=events.append,
    )
    pm = tmp_path / "pm"
    adapter = pm / "round-1" / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file()
    assert (adapter / "adapter_config.json").is_file()
    assert not list(pm.rglob("model.safetensors")), "the base weights must not be copied"
    assert (
        sum(f.stat().st_size for f in pm.rglob("*") if f.is_file())
        < (base_dir / "model.safetensors").stat().st_size
    )

    (info,) = result.rounds
    manifest = read_manifest(pm)
    assert manifest is not None
    assert info.train_examples == 12
    assert info.heldout_tasks == 2
    assert info.train_loss > 0
    # Round 1 trains on the run's own rewards: the learner only answers held-out queries.
    assert len(learner.calls) == 2
    held = {k: t for k, t in ((task_key(t), t) for t in SEEDS) if k in manifest.heldout_keys}
    expected = sum(t["entry_point"] in EVEN for t in held.values()) / 2
    assert info.heldout_pass_rate == expected
    graded = rows(pm / "round-1" / "heldout.jsonl")
    assert [r["key"] for r in graded] == manifest.heldout_keys
    # The learner's system prompt for each held-out task is the prompt the model wrote.
    assert system_prompts(learner) == [r["prompt"] for r in graded]
    (recorded,) = store.prompt_model_rounds("run-1")
    assert (recorded.training_id, recorded.round) == (result.training_id, 1)
    assert (recorded.train_loss, recorded.heldout_pass_rate) == (info.train_loss, expected)
    assert {e["phase"] for e in events if e["event"] == "phase"} == {"load", "train", "heldout"}
    assert sum(e["event"] == "advance" and e["phase"] == "train" for e in events) == 12

    # Reloaded from disk, the adapter holds the trained weights and writes prompts.
    from safetensors.torch import load_file

    reloaded = PromptModel.load(pm)
    saved = load_file(str(adapter / "adapter_model.safetensors"))
    live = {k: v for k, v in reloaded.model.state_dict().items() if "lora_" in k}
    assert len(saved) == len(live) > 0
    for name, tensor in saved.items():
        match = [
            v
            for k, v in live.items()
            if k.replace(".default", "").endswith(name.split("model.", 1)[1])
        ]
        assert len(match) == 1, name
        assert bool((match[0] == tensor).all()), name
    assert reloaded.optimal_reward == info.optimal_reward
    prompt = reloaded.write(SEEDS[0]["prompt"])
    assert isinstance(prompt, str)
    assert prompt.strip()
    assert reloaded.write(SEEDS[0]["prompt"]) == prompt  # greedy and cached
    assert reloaded.trained_on == frozenset(manifest.train_keys)


def test_a_second_round_resumes_from_the_first(
    trained: Path,
    store: RunStore,
    base_dir: Path,
    light_domain: CodeDomain,
    process_sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sipdo.trprompt.loop as loop

    started_from: list[Path | None] = []
    real = loop.with_adapter

    def spy(model: Any, adapter: Path | None, settings: Any) -> Any:
        started_from.append(adapter)
        return real(model, adapter, settings)

    monkeypatch.setattr(loop, "with_adapter", spy)
    round1 = (trained / "round-1" / "adapter" / "adapter_model.safetensors").read_bytes()
    learner = scripted_learner()
    result = train_prompt_model(
        store,
        ["run-1"],
        trained,
        config(base_dir, rounds=2),
        learner=learner,
        sandbox=process_sandbox,
        domain=light_domain,
    )
    assert started_from == [trained / "round-1" / "adapter"]
    assert [r.round for r in result.rounds] == [1, 2]
    # Round 1 is not redone: 6 training queries generated and graded, then 2 held out.
    assert len(learner.calls) == 8
    assert (trained / "round-1" / "adapter" / "adapter_model.safetensors").read_bytes() == round1
    assert (trained / "round-2" / "adapter" / "adapter_model.safetensors").read_bytes() != round1
    outcomes = rows(trained / "round-2" / "outcomes.jsonl")
    manifest = read_manifest(trained)
    assert manifest is not None
    assert [r["key"] for r in outcomes] == manifest.train_keys
    assert all(r["passed"] and r["score"] == 1.0 for r in outcomes)
    pool = rows(trained / "round-2" / "pool.jsonl")
    assert len(pool) == 12 + 6
    assert sum(p["origin"] == "round-2" for p in pool) == 6
    assert not {p["key"] for p in pool} & set(manifest.heldout_keys)
    assert [(r.round, r.training_id) for r in store.prompt_model_rounds("run-1")] == [
        (1, result.training_id),
        (2, result.training_id),
    ]
    # Asking for rounds already done changes nothing and asks nobody.
    idle = ScriptedChatModel(responses=[])
    again = train_prompt_model(
        store, ["run-1"], trained, config(base_dir, rounds=2), learner=idle, domain=light_domain
    )
    assert again.rounds == result.rounds
    assert idle.calls == []


def test_an_interrupted_round_resumes_without_asking_twice(
    trained: Path,
    store: RunStore,
    base_dir: Path,
    light_domain: CodeDomain,
    process_sandbox: Sandbox,
) -> None:
    answers = scripted_learner()
    asked: list[int] = []

    def crash_after_three(messages: list[BaseMessage]) -> Any:
        asked.append(1)
        if len(asked) > 3:
            raise KeyboardInterrupt  # the user stops the training mid-round
        return answers.responder(messages) if answers.responder else None

    with pytest.raises(KeyboardInterrupt):
        train_prompt_model(
            store,
            ["run-1"],
            trained,
            config(base_dir, rounds=2),
            learner=ScriptedChatModel(responder=crash_after_three),
            sandbox=process_sandbox,
            domain=light_domain,
        )
    manifest = read_manifest(trained)
    assert manifest is not None
    assert manifest.last_round == 1
    assert len(rows(trained / "round-2" / "outcomes.jsonl")) == 3
    learner = scripted_learner()
    result = train_prompt_model(
        store,
        ["run-1"],
        trained,
        config(base_dir, rounds=2),
        learner=learner,
        sandbox=process_sandbox,
        domain=light_domain,
    )
    assert [r.round for r in result.rounds] == [1, 2]
    assert len(learner.calls) == 3 + 2  # the 3 training queries left, then the held-out
    assert len(rows(trained / "round-2" / "outcomes.jsonl")) == 6


def test_a_directory_trained_on_other_runs_is_not_resumed(
    trained: Path, tmp_path: Path, base_dir: Path, light_domain: CodeDomain
) -> None:
    with RunStore(f"sqlite:///{tmp_path / 'other.db'}") as other:
        record_run(other, "run-2")
        with pytest.raises(ConfigurationError, match="pick another -o DIR"):
            train_prompt_model(
                other, ["run-2"], trained, config(base_dir, rounds=2), domain=light_domain
            )
