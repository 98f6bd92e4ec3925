"""``PromptModel``: a trained prompt model writing the system prompt for each query.

Loaded from a directory ``sipdo train-prompt-model`` wrote (base model + the
last round's adapter), it maps (query, textual reward, general instructions) to
a prompt; the reward defaults to the optimal reward the training settled on, the
instructions to those it was trained with (the graph passes the candidate the
optimizer refines instead). The graph and ``sipdo eval`` call ``acompose`` per
task: generation is greedy with a fixed seed (the same inputs write the same
prompt), runs in a worker thread one at a time (two CPU cores gain nothing from
overlapping it), and is cached per (query, reward, instructions): in memory, and
for a loaded model in ``round-N/written.jsonl``, so a resumed run or a repeated
evaluation does not generate again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.structured import CallStats
from sipdo.trprompt.checkpoint import adapter_dir, append_jsonl, read_jsonl, read_manifest
from sipdo.trprompt.extra import require_train_extra
from sipdo.trprompt.template import clean_prompt, render_request

MAX_NEW_TOKENS = 96
CACHE_FILE = "written.jsonl"
ROLE = "prompt_model"  # its calls in the budget and the run store's usage
log = logging.getLogger(__name__)


def generate_counted(
    model: Any,
    tokenizer: Any,
    source: str,
    *,
    max_new_tokens: int = MAX_NEW_TOKENS,
    sample: bool = False,
    seed: int = 0,
) -> tuple[str, int, int]:
    """(the model's continuation of ``source``, input tokens, output tokens); greedy, or
    sampled with ``seed``. The torch seed is set either way, so one seed, one text."""
    torch = require_train_extra()["torch"]
    ids = tokenizer(source, add_special_tokens=False, return_tensors="pt")
    options: dict[str, Any] = {"do_sample": sample}
    if sample:
        options.update(temperature=0.8, top_p=0.95)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(
            **ids,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **options,
        )
    n_in = int(ids["input_ids"].shape[1])
    new = out[0, n_in:]
    return str(tokenizer.decode(new, skip_special_tokens=True)), n_in, int(new.shape[0])


def generate(model: Any, tokenizer: Any, source: str, **options: Any) -> str:
    """The model's continuation of ``source`` (``generate_counted`` without the counts)."""
    return generate_counted(model, tokenizer, source, **options)[0]


def task_query(task: Mapping[str, Any]) -> str:
    """The text a solver is shown for ``task``, as the training data holds it."""
    from sipdo.store.export import query_of
    from sipdo.store.records import TaskRecord

    return query_of(TaskRecord(str(task.get("id")), dict(task), "seed", "", 1, ""))


@dataclass(frozen=True)
class Written:
    """A query's prompt; ``stats`` of the generation, None when it came from the cache."""

    prompt: str
    stats: CallStats | None


def check_prompt_model_dir(directory: str | Path, round: int | None = None) -> tuple[Path, int]:
    """(directory, round) of a usable prompt model, checked without loading it (no torch):
    a readable manifest with a finished round whose adapter files are there and readable.
    ConfigurationError saying what is wrong and how to get a model otherwise."""
    path = Path(directory).expanduser()
    retrain = f"train one with: sipdo train-prompt-model RUN_ID -o {path}"
    if not path.is_dir():
        raise ConfigurationError(f"prompt model {path}: no such directory; {retrain}")
    manifest = read_manifest(path)
    if manifest is None or not manifest.rounds:
        raise ConfigurationError(
            f"{path} holds no trained prompt model (no finished round in its trprompt.json); "
            + retrain
        )
    done = [r.round for r in manifest.rounds]
    k = done[-1] if round is None else round
    if k not in done:
        raise ConfigurationError(f"{path} has rounds {done}, not round {k}")
    adapter = adapter_dir(path, k)
    config = adapter / "adapter_config.json"
    weights = [adapter / n for n in ("adapter_model.safetensors", "adapter_model.bin")]
    try:
        json.loads(config.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"prompt model {path}: round {k}'s adapter is missing or corrupt ({config}: {exc}); "
            f"resume the training to write it again (sipdo train-prompt-model ... -o {path}) "
            "or pick another round"
        ) from exc
    if not any(w.is_file() and w.stat().st_size > 0 for w in weights):
        raise ConfigurationError(
            f"prompt model {path}: round {k}'s adapter has no weights in {adapter}; "
            f"resume the training to write it again (sipdo train-prompt-model ... -o {path})"
        )
    if weights[0].is_file():
        problem = safetensors_problem(weights[0])
        if problem is not None:
            raise ConfigurationError(
                f"prompt model {path}: round {k}'s adapter weights are corrupt ({weights[0]}: "
                f"{problem}); resume the training to write them again (sipdo "
                f"train-prompt-model ... -o {path}) or pick another round"
            )
    return path, k


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with a ``.safetensors`` file's framing, or None: checked without
    torch by reading its header (8-byte little-endian length, then JSON naming each
    tensor's byte range), so a truncated or overwritten file fails before a run starts
    instead of when the model is first loaded."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"{size} bytes, shorter than a header"
            length = int.from_bytes(head, "little")
            if length > size - 8:
                return f"header of {length} bytes in a file of {size}"
            header = json.loads(fh.read(length).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"unreadable header ({exc})"
    if not isinstance(header, dict):
        return "the header is not a JSON object"
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            return f"tensor {name!r} has no valid data_offsets"
        end = max(end, offsets[1])
    if 8 + length + end != size:
        return f"{size} bytes where the header describes {8 + length + end} (truncated?)"
    return None


class PromptModel:
    """Writes a query's prompt conditioned on a textual reward and general instructions.

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
        instructions: str = "",
        trained_on: frozenset[str] = frozenset(),
        max_new_tokens: int = MAX_NEW_TOKENS,
        source: str = "",
        seed: int = 0,
        cache_file: Path | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.optimal_reward = optimal_reward
        self.fallback = fallback
        self.instructions = instructions
        self.trained_on = trained_on
        self.max_new_tokens = max_new_tokens
        self.source = source
        self.seed = seed
        self.cache_file = cache_file
        self._lock = threading.Lock()
        self._cache: dict[str, str] = {}
        if cache_file is not None:
            self._cache = {r["key"]: r["prompt"] for r in read_jsonl(cache_file) if "key" in r}

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        round: int | None = None,
        seed: int = 0,
        cache: bool = True,
        base: tuple[Any, Any] | None = None,
    ) -> PromptModel:
        """The prompt model in ``directory`` after its last (or the given) finished round;
        ConfigurationError (before any slow load) for a missing or corrupt model. With
        ``cache=False`` nothing is read from or written to ``round-N/written.jsonl``;
        ``base`` is the (model, tokenizer) already loaded, e.g. ``unloaded()`` of another
        round (a GGUF base takes minutes to dequantize)."""
        require_train_extra("using a prompt model")
        path, k = check_prompt_model_dir(directory, round)
        from sipdo.trprompt.base import load_base, resolve_base
        from sipdo.trprompt.lora import LoraSettings, with_adapter

        manifest = read_manifest(path)
        assert manifest is not None  # checked above
        model, tokenizer = base or load_base(resolve_base(manifest.base_model))
        try:
            model = with_adapter(model, adapter_dir(path, k), LoraSettings())
        except Exception as exc:  # peft/safetensors raise many kinds on a damaged adapter
            raise ConfigurationError(
                f"prompt model {path}: round {k}'s adapter could not be loaded "
                f"({type(exc).__name__}: {exc}); resume the training to write it again "
                f"(sipdo train-prompt-model ... -o {path}) or pick another round"
            ) from exc
        model.eval()
        info = next(r for r in manifest.rounds if r.round == k)
        return cls(
            model,
            tokenizer,
            optimal_reward=info.optimal_reward,
            fallback=manifest.fallback_prompt,
            instructions=manifest.instructions,
            trained_on=frozenset(manifest.train_keys),
            max_new_tokens=int(manifest.settings.get("max_new_tokens", MAX_NEW_TOKENS)),
            source=f"{manifest.training_id} round {k}",
            seed=seed,
            cache_file=adapter_dir(path, k).parent / CACHE_FILE if cache else None,
        )

    def unloaded(self) -> tuple[Any, Any]:
        """(base model without this adapter, tokenizer): for ``load(..., base=)``; this
        prompt model is unusable afterwards."""
        return self.model.unload(), self.tokenizer

    @property
    def name(self) -> str:
        return f"prompt-model:{self.source}" if self.source else "prompt-model"

    def cache_key(self, query: str, reward: str, instructions: str) -> str:
        """The cache key of a greedy prompt (all that decides it under this model and seed)."""
        raw = json.dumps([query, reward, instructions, self.max_new_tokens, self.seed])
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]

    def compose(
        self, query: str, reward: str | None = None, *, instructions: str | None = None
    ) -> Written:
        """The greedy prompt for ``query`` (from the cache if it was written before)."""
        reward = self.optimal_reward if reward is None else reward
        instructions = self.instructions if instructions is None else instructions
        key = self.cache_key(query, reward, instructions)
        with self._lock:  # one generation at a time; a waiting twin then finds it cached
            if key in self._cache:
                return Written(self._cache[key], None)
            source = render_request(self.tokenizer, query, reward, instructions)
            started = time.perf_counter()
            text, n_in, n_out = generate_counted(
                self.model,
                self.tokenizer,
                source,
                max_new_tokens=self.max_new_tokens,
                seed=self.seed,
            )
            stats = CallStats(1, n_in, n_out, time.perf_counter() - started)
            prompt = clean_prompt(text) or self.fallback
            self._cache[key] = prompt
            self._persist(key, prompt)
        return Written(prompt, stats)

    def _persist(self, key: str, prompt: str) -> None:
        if self.cache_file is None:
            return
        try:
            append_jsonl(self.cache_file, {"key": key, "prompt": prompt})
        except OSError as exc:  # a read-only model directory: keep the cache in memory
            log.warning("prompt model cache %s not written: %s", self.cache_file, exc)
            self.cache_file = None

    def write(
        self,
        query: str,
        reward: str | None = None,
        *,
        instructions: str | None = None,
        sample: bool = False,
        seed: int = 0,
    ) -> str:
        """The system prompt for ``query`` (greedy prompts are cached; sampled are not)."""
        if not sample:
            return self.compose(query, reward, instructions=instructions).prompt
        reward = self.optimal_reward if reward is None else reward
        instructions = self.instructions if instructions is None else instructions
        source = render_request(self.tokenizer, query, reward, instructions)
        with self._lock:
            text = generate(
                self.model,
                self.tokenizer,
                source,
                max_new_tokens=self.max_new_tokens,
                sample=True,
                seed=seed,
            )
        return clean_prompt(text) or self.fallback

    async def awrite(self, query: str, reward: str | None = None) -> str:
        """``write`` from async code, in a worker thread."""
        return await asyncio.to_thread(self.write, query, reward)

    async def acompose_task(
        self, task: Mapping[str, Any], instructions: str | None = None
    ) -> Written:
        """``compose`` for a task dict, from async code (in a worker thread)."""
        return await asyncio.to_thread(self.compose, task_query(task), instructions=instructions)


def open_prompt_model(value: str | Path | PromptModel | None, *, seed: int = 0) -> Any:
    """A ``PromptModel`` from a directory (loaded now: errors before a run starts) or as given."""
    if value is None or isinstance(value, PromptModel):
        return value
    return PromptModel.load(value, seed=seed)
