"""LoRA supervised fine-tuning of the prompt model: log P(prompt | query, reward).

A plain torch loop (batch of one, AdamW, gradient clipping) rather than the HF
``Trainer``: on two CPU cores a round is a few dozen steps, and the loop is short
enough to read. Only the prompt's tokens carry loss; the request is context.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.trprompt.extra import require_train_extra

StepCallback = Callable[[int, int, float], None]  # (step, total steps, loss)


@dataclass(frozen=True)
class LoraSettings:
    """Adapter shape and SFT schedule. ``max_length`` caps request + prompt tokens."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    epochs: int = 2
    learning_rate: float = 2e-4
    max_length: int = 768
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.rank, self.alpha, self.epochs, self.max_length) < 1:
            raise ConfigurationError("LoRA rank, alpha, epochs and max_length must be >= 1")
        if not 0 < self.learning_rate < 1 or not 0 <= self.dropout < 1:
            raise ConfigurationError("learning rate must be in (0, 1) and dropout in [0, 1)")


def with_adapter(model: Any, adapter: Path | None, settings: LoraSettings) -> Any:
    """``model`` with a trainable LoRA adapter: a new one, or the one saved in ``adapter``."""
    peft = require_train_extra()["peft"]
    if adapter is not None:
        return peft.PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
    config = peft.LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, config)


def encode_pair(tokenizer: Any, source: str, target: str, max_length: int) -> tuple[list[int], int]:
    """Token ids of ``source`` + ``target`` + end of text, and where the target starts.

    A request too long for ``max_length`` loses its start, never the target."""
    src = list(tokenizer(source, add_special_tokens=False)["input_ids"])
    tgt = list(tokenizer(target, add_special_tokens=False)["input_ids"])
    tgt = [*tgt[: max_length // 2], tokenizer.eos_token_id]
    src = src[-(max_length - len(tgt)) :]
    return src + tgt, len(src)


def sft(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[str, str]],
    settings: LoraSettings,
    *,
    on_step: StepCallback | None = None,
) -> float:
    """Fine-tune ``model`` (with an adapter) on (request, prompt) pairs; the mean loss of
    the last epoch."""
    torch = require_train_extra()["torch"]
    if not pairs:
        raise ConfigurationError("no training pairs for this round")
    torch.manual_seed(settings.seed)
    encoded = [encode_pair(tokenizer, s, t, settings.max_length) for s, t in pairs]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate)
    order = list(range(len(encoded)))
    rng = random.Random(settings.seed)
    total = settings.epochs * len(order)
    step, losses = 0, list[float]()
    model.train()
    for _ in range(settings.epochs):
        rng.shuffle(order)
        losses = []
        for i in order:
            ids, start = encoded[i]
            input_ids = torch.tensor([ids])
            labels = input_ids.clone()
            labels[0, :start] = -100  # no loss on the request
            loss = model(input_ids=input_ids, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
            step += 1
            if on_step is not None:
                on_step(step, total, losses[-1])
    model.eval()
    return sum(losses) / len(losses)
