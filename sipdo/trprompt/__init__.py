"""TRPrompt: a query-dependent prompt model trained from the loop's textual rewards.

``train_prompt_model`` fine-tunes a small causal LM (LoRA, on CPU) to write the
system prompt for each query, conditioned on a textual reward, and iterates the
paper's loop (generate, answer, grade, fine-tune, update the optimal reward).
``PromptModel.load(DIR)`` gives the trained writer the graph and ``sipdo eval``
use. Needs the ``train`` extra (torch, transformers, peft), imported on first use.
"""

from __future__ import annotations

from sipdo.trprompt.checkpoint import Manifest, RoundInfo, read_manifest
from sipdo.trprompt.dataset import Example, TrainingSet, load_training_set
from sipdo.trprompt.extra import require_train_extra
from sipdo.trprompt.hygiene import HeldOut
from sipdo.trprompt.loop import TrainConfig, TrainingResult, train_prompt_model
from sipdo.trprompt.lora import LoraSettings
from sipdo.trprompt.writer import PromptModel

__all__ = [
    "Example",
    "HeldOut",
    "LoraSettings",
    "Manifest",
    "PromptModel",
    "RoundInfo",
    "TrainConfig",
    "TrainingResult",
    "TrainingSet",
    "load_training_set",
    "read_manifest",
    "require_train_extra",
    "train_prompt_model",
]
