"""``PromptModel``: a trained prompt model writing the system prompt for each query.

Loaded from a directory ``sipdo train-prompt-model`` wrote (base model + the
last round's adapter), it maps (query, textual reward) to a prompt; the reward
defaults to the optimal reward the training settled on. The graph and ``sipdo
eval`` call ``awrite`` per task: generation runs in a worker thread, one at a
time (two CPU cores gain nothing from overlapping it), and a query asked again
under the same conditioning is answered from a cache.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.trprompt.checkpoint import adapter_dir, read_manifest
from sipdo.trprompt.extra import require_train_extra
from sipdo.trprompt.template import clean_prompt, render_request

MAX_NEW_TOKENS = 96


def generate(
    model: Any,
    tokenizer: Any,
    source: str,
    *,
    max_new_tokens: int = MAX_NEW_TOKENS,
    sample: bool = False,
    seed: int = 0,
) -> str:
    """The model's continuation of ``source`` (greedy, or sampled with ``seed``)."""
    torch = require_train_extra()["torch"]
    ids = tokenizer(source, add_special_tokens=False, return_tensors="pt")
    options: dict[str, Any] = {"do_sample": sample}
    if sample:
        torch.manual_seed(seed)
        options.update(temperature=0.8, top_p=0.95)
    with torch.no_grad():
        out = model.generate(
            **ids,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **options,
        )
    return str(tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))


class PromptModel:
    """Writes a query's prompt conditioned on a textual reward.

    ``fallback`` is used when the model writes nothing usable (an empty reply);
    ``trained_on`` holds the task keys of its training queries, so an evaluation
    can check it is not scored on them.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        optimal_reward: str,
        fallback: str,
        trained_on: frozenset[str] = frozenset(),
        max_new_tokens: int = MAX_NEW_TOKENS,
        source: str = "",
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.optimal_reward = optimal_reward
        self.fallback = fallback
        self.trained_on = trained_on
        self.max_new_tokens = max_new_tokens
        self.source = source
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], str] = {}

    @classmethod
    def load(cls, directory: str | Path, *, round: int | None = None) -> PromptModel:
        """The prompt model in ``directory`` after its last (or the given) finished round."""
        from sipdo.trprompt.base import load_base, resolve_base
        from sipdo.trprompt.lora import LoraSettings, with_adapter

        path = Path(directory).expanduser()
        manifest = read_manifest(path)
        if manifest is None or not manifest.rounds:
            raise ConfigurationError(
                f"{path} holds no trained prompt model (no finished round in its "
                f"trprompt.json); train one with: sipdo train-prompt-model RUN_ID -o {path}"
            )
        done = [r.round for r in manifest.rounds]
        k = done[-1] if round is None else round
        if k not in done:
            raise ConfigurationError(f"{path} has rounds {done}, not round {k}")
        model, tokenizer = load_base(resolve_base(manifest.base_model))
        model = with_adapter(model, adapter_dir(path, k), LoraSettings())
        model.eval()
        info = next(r for r in manifest.rounds if r.round == k)
        return cls(
            model,
            tokenizer,
            optimal_reward=info.optimal_reward,
            fallback=manifest.fallback_prompt,
            trained_on=frozenset(manifest.train_keys),
            source=f"{path} round {k}",
        )

    def write(
        self, query: str, reward: str | None = None, *, sample: bool = False, seed: int = 0
    ) -> str:
        """The system prompt for ``query`` (greedy prompts are cached)."""
        reward = self.optimal_reward if reward is None else reward
        key = (query, reward)
        if not sample and key in self._cache:
            return self._cache[key]
        source = render_request(self.tokenizer, query, reward)
        with self._lock:
            text = generate(
                self.model,
                self.tokenizer,
                source,
                max_new_tokens=self.max_new_tokens,
                sample=sample,
                seed=seed,
            )
        prompt = clean_prompt(text) or self.fallback
        if not sample:
            self._cache[key] = prompt
        return prompt

    async def awrite(self, query: str, reward: str | None = None) -> str:
        """``write`` from async code, in a worker thread."""
        return await asyncio.to_thread(self.write, query, reward)
