"""A recorded run, a tiny random causal LM and a scripted learner for the TRPrompt tests.

The run is written through the public run-store API: the code domain's eight
seed tasks (verified), one rejected generated task, and learner attempts under
two prompt versions with the verifier's feedback as textual rewards.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from sipdo.plugins.domains.code import CodeDomain
from sipdo.store import BaseRunStore
from sipdo.testing import ScriptedChatModel
from sipdo.trprompt import LoraSettings, TrainConfig

V0 = "You write Python functions. Return only code.\n"
V1 = "You write Python functions. Handle empty inputs and edge cases first. Return only code.\n"
PASS = "passed all tests and matched the reference on every generated input"
SEEDS: list[dict[str, Any]] = CodeDomain().seed_tasks()
REJECTED = {
    "id": "rejected-task",
    "prompt": 'def bad(x: int) -> int:\n    """Ambiguous."""\n',
    "entry_point": "bad",
    "reference_solution": "def bad(x: int) -> int:\n    return x\n",
    "tests": "from solution import bad\n\ndef test_bad():\n    assert bad(1) == 2\n",
}


def record_run(
    store: BaseRunStore, run_id: str = "run-1", tasks: list[dict[str, Any]] | None = None
) -> None:
    """A finished run: v0 fails every other task, v1 passes all; the rejected task has
    attempts too (they must never reach the training set)."""
    tasks = SEEDS if tasks is None else tasks
    store.create_run(run_id, {"domain": "code"}, V0)
    store.record_prompt_version(run_id, "v0", V0, None, True, {"score": 0.5}, "initial", 0)
    store.record_prompt_version(run_id, "v1", V1, "v0", True, {"score": 1.0}, "fixes edges", 1)
    for i, task in enumerate(tasks):
        store.record_task(run_id, task, "seed", "seed task", None, 1, "")
        ok = i % 2 == 0
        feedback = (
            PASS if ok else f"1 of 3 tests failed: test_empty: {task['entry_point']}('') raised"
        )
        store.record_attempt(
            run_id, task["id"], "v0", "learner", "code", ok, 1.0 if ok else 0.5, feedback
        )
        store.record_attempt(run_id, task["id"], "v1", "learner", "code", True, 1.0, PASS)
    store.record_task(run_id, REJECTED, "rejected", "reference fails", None, 2, "ambiguity")
    store.record_attempt(
        run_id, REJECTED["id"], "v1", "learner", "x", False, 0.0, "REJECTED-TASK-REWARD"
    )
    store.finish_run(run_id, "completed", V1, "iterations")


def scripted_learner(solved: set[str] | None = None) -> ScriptedChatModel:
    """A learner that answers with the reference for the seed tasks named in ``solved``
    (default: all) and with a wrong function otherwise; it logs every call."""
    by_entry = {t["entry_point"]: t for t in SEEDS}

    def respond(messages: list[BaseMessage]) -> str:
        text = str(messages[-1].content)
        entry = re.search(r"def (\w+)\(", text)
        task = by_entry[entry.group(1)] if entry else None
        if task is not None and (solved is None or task["entry_point"] in solved):
            return f"```python\n{task['reference_solution']}```"
        name = entry.group(1) if entry else "f"
        return f"```python\ndef {name}(*args):\n    return None\n```"

    return ScriptedChatModel(responder=respond)


CORPUS = [
    "Write the system prompt for an AI model that must solve the task below.",
    "You write Python functions. Handle empty inputs and edge cases first. Return only code.",
    PASS,
    "def f(s: str) -> list[int]:\n    return [len(x) for x in s.split()]\n",
]


def tiny_base(directory: Path) -> Path:
    """A randomly initialised two-layer Qwen2 with a byte-level BPE tokenizer trained on
    the spot, saved as a Hugging Face directory (no download; about a second)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(CORPUS * 20 + [t["prompt"] for t in SEEDS] * 5, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def config(base: Path, rounds: int, **changes: Any) -> TrainConfig:
    """A training of the tiny model that takes seconds: short prompts, one epoch, a
    learning rate high enough to move a random model."""
    settings = {
        "base_model": str(base),
        "rounds": rounds,
        "min_rewards": 4,
        "max_new_tokens": 12,
        "lora": LoraSettings(rank=4, alpha=8, epochs=1, learning_rate=1e-2),
        **changes,
    }
    return TrainConfig(**settings)
