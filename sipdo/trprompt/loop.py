"""TRPrompt's iterate loop: train a prompt model on a run's textual rewards, round by round.

Round 1 fine-tunes on what the run recorded: every (query, prompt version,
textual reward) of its verified training tasks; the loop's prompt versions play
the paper's initial prompt model. Each later round k is the paper's Algorithm 1:

1. the prompt model of round k-1, conditioned on the optimal reward t*, writes a
   prompt per training query (``samples`` of them: one greedy, the rest sampled);
   the learner answers under it and the domain's verifier grades the answer; the
   verifier's feedback is the textual reward;
2. LoRA SFT continues on the best prompts per query of everything seen so far
   (each with the reward it earned: the model learns which prompt earns what);
3. t* is updated to the most frequent reward among the best-scored prompts.

After SFT each round writes a prompt for every held-out query of the run (never
trained on) and records the learner's mean verifier score under them as the
round's held-out reward. Every step is checkpointed (see ``checkpoint``), so a
killed or extended training resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.plugins.domains.base import Domain
from sipdo.plugins.models import ModelSpec, resolve_model
from sipdo.sandbox import Sandbox
from sipdo.store import BaseRunStore
from sipdo.trprompt.base import check_causal_lm, load_base, resolve_base
from sipdo.trprompt.checkpoint import (
    Manifest,
    RoundInfo,
    adapter_dir,
    read_manifest,
    read_pool,
    round_dir,
    write_jsonl,
    write_manifest,
)
from sipdo.trprompt.dataset import Example, TrainingSet, best_examples, load_training_set
from sipdo.trprompt.extra import require_train_extra
from sipdo.trprompt.hygiene import HeldOut
from sipdo.trprompt.lora import LoraSettings, sft, with_adapter
from sipdo.trprompt.outcome import OpenedSandbox
from sipdo.trprompt.rounds import RoundContext, generate_round, grade_heldout
from sipdo.trprompt.template import best_reward, render_request
from sipdo.trprompt.writer import MAX_NEW_TOKENS, PromptModel

Event = dict[str, Any]
EventSink = Callable[[Event], None]


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how; ``per_query`` best prompts per query go into each SFT round."""

    base_model: str = "local:qwen2.5-coder-0.5b"
    rounds: int = 2
    domain: str = "code"
    per_query: int = 2
    samples: int = 1
    heldout_fraction: float = 0.25
    min_rewards: int = 8
    max_new_tokens: int = MAX_NEW_TOKENS
    lora: LoraSettings = field(default_factory=LoraSettings)

    def __post_init__(self) -> None:
        if min(self.rounds, self.per_query, self.samples, self.min_rewards) < 1:
            raise ConfigurationError("rounds, per_query, samples and min_rewards must be >= 1")


@dataclass(frozen=True)
class TrainingResult:
    """Where the prompt model is and every round it has finished."""

    directory: Path
    training_id: str
    rounds: tuple[RoundInfo, ...]
    optimal_reward: str


def _domain(name: str) -> Domain:
    from sipdo.plugins.registry import load

    obj = load("sipdo.domains", name)
    return obj() if isinstance(obj, type) else obj  # type: ignore[no-any-return]


def _fallback_prompt(store: BaseRunStore, run_ids: Sequence[str]) -> str:
    run = store.get_run(run_ids[0])
    return run.best_prompt or run.initial_prompt


def _instructions(store: BaseRunStore, run_ids: Sequence[str]) -> str:
    """What the runs' prompt versions were refined from: the first run's initial prompt."""
    return store.get_run(run_ids[0]).initial_prompt


def _open_manifest(
    directory: Path, data: TrainingSet, config: TrainConfig, store: BaseRunStore
) -> Manifest:
    """The directory's manifest, or a new one; refuses a directory trained on something else."""
    manifest = read_manifest(directory)
    if manifest is None:
        return Manifest(
            training_id=f"{directory.name}-{uuid.uuid4().hex[:8]}",
            base_model=config.base_model,
            runs=list(data.runs),
            domain=config.domain,
            train_keys=list(data.train),
            heldout_keys=list(data.heldout),
            fallback_prompt=_fallback_prompt(store, data.runs),
            instructions=_instructions(store, data.runs),
            optimal_reward=best_reward((ex.score, ex.reward) for ex in data.examples) or "passed",
            settings=asdict(config),
        )
    same = (manifest.base_model, manifest.runs, manifest.domain, manifest.train_keys)
    if same != (config.base_model, list(data.runs), config.domain, list(data.train)):
        raise ConfigurationError(
            f"{directory} holds a prompt model trained from {manifest.base_model} on runs "
            f"{', '.join(manifest.runs)} ({manifest.domain}); resuming needs the same base "
            "model, runs, domain and held-out fraction: pick another -o DIR to start afresh"
        )
    return manifest


def _train_only(chosen: list[Example], data: TrainingSet) -> None:
    """The hygiene check at the point of use: SFT data comes from training queries only."""
    allowed = set(data.train)
    stray = [ex.key for ex in chosen if ex.key not in allowed]
    if stray:
        raise ConfigurationError(f"SFT data holds {len(stray)} queries outside the training set")


def train_prompt_model(
    store: BaseRunStore,
    run_ids: Sequence[str],
    output_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    learner: ModelSpec | None = None,
    sandbox: Sandbox | None = None,
    sandbox_kind: str = "auto",
    domain: Domain | None = None,
    evaluation_set: HeldOut | None = None,
    on_event: EventSink | None = None,
) -> TrainingResult:
    """Train (or resume training) the prompt model in ``output_dir`` up to ``config.rounds``.

    ``learner`` answers under the generated prompts (default: the learner's default
    model); ``domain`` an instance of the ``config.domain`` plugin to grade with (e.g.
    with lighter verifier settings); ``evaluation_set`` the held-out set training
    refuses (default HumanEval). The learner and the sandbox are driven by one event
    loop per graded pass: call this from sync code (or a worker thread).
    """
    require_train_extra()  # before any slow step: say what to install
    config = config or TrainConfig()
    emit = on_event or (lambda _event: None)
    directory = Path(output_dir).expanduser()
    data = load_training_set(
        store,
        run_ids,
        heldout_fraction=config.heldout_fraction,
        min_rewards=config.min_rewards,
        seed=config.lora.seed,
        evaluation_set=evaluation_set,
    )
    if domain is None:
        domain = _domain(config.domain)
    elif domain.name != config.domain:
        raise ConfigurationError(f"domain {domain.name!r} given for a {config.domain!r} training")
    base = resolve_base(config.base_model)
    check_causal_lm(base)  # refuse a bad base before the directory is claimed
    manifest = _open_manifest(directory, data, config, store)
    write_manifest(directory, manifest)
    last = manifest.last_round
    if last < config.rounds:
        first = last + 1
        sft_done = (round_dir(directory, first) / "sft.json").is_file()
        emit({"event": "phase", "phase": "load", "round": first, "total": 1})
        model, tokenizer = load_base(base)
        start = adapter_dir(directory, first if sft_done else last) if last or sft_done else None
        model = with_adapter(model, start, config.lora)
        emit({"event": "advance", "phase": "load", "done": 1})
        provider = OpenedSandbox(sandbox, sandbox_kind)
        ctx = RoundContext(
            directory=directory,
            data=data,
            domain=domain,
            sandbox=provider,
            learner=lambda: resolve_model(learner, role="learner"),
            emit=emit,
        )
        pool = read_pool(directory, last) if last else list(data.examples)
        try:
            for k in range(first, config.rounds + 1):
                info, pool = _round(k, ctx, model, tokenizer, manifest, pool, config)
                manifest.rounds.append(info)
                manifest.optimal_reward = info.optimal_reward
                write_manifest(directory, manifest)
                emit({"event": "round_done", **asdict(info)})
        finally:
            provider.close()
    for info in manifest.rounds:
        for run_id in manifest.runs:
            store.record_prompt_model_round(
                run_id,
                manifest.training_id,
                info.round,
                base_model=manifest.base_model,
                output_dir=str(directory.resolve()),
                train_examples=info.train_examples,
                train_loss=info.train_loss,
                heldout_tasks=info.heldout_tasks,
                heldout_reward=info.heldout_reward,
                heldout_pass_rate=info.heldout_pass_rate,
                optimal_reward=info.optimal_reward,
                seconds=info.seconds,
            )
    return TrainingResult(
        directory=directory,
        training_id=manifest.training_id,
        rounds=tuple(manifest.rounds),
        optimal_reward=manifest.optimal_reward,
    )


def _round(
    k: int,
    ctx: RoundContext,
    model: Any,
    tokenizer: Any,
    manifest: Manifest,
    pool: list[Example],
    config: TrainConfig,
) -> tuple[RoundInfo, list[Example]]:
    """One round: generate and grade (k > 1), SFT, update t*, grade the held-out queries."""
    started = time.perf_counter()
    here = round_dir(ctx.directory, k)
    sft_file = here / "sft.json"
    writer = PromptModel(
        model,
        tokenizer,
        optimal_reward=manifest.optimal_reward,
        fallback=manifest.fallback_prompt,
        instructions=manifest.instructions,
        max_new_tokens=config.max_new_tokens,
    )
    if sft_file.is_file():  # the round was interrupted after its SFT: keep that adapter
        saved = json.loads(sft_file.read_text("utf-8"))
        loss, pool, seconds_before = saved["loss"], read_pool(ctx.directory, k), saved["seconds"]
    else:
        if k > 1:
            pool = pool + asyncio.run(generate_round(k, ctx, writer, config.samples))
        chosen = best_examples(pool, config.per_query)
        _train_only(chosen, ctx.data)
        pairs = [
            (render_request(tokenizer, ex.query, ex.reward, manifest.instructions), ex.prompt)
            for ex in chosen
        ]
        ctx.emit(
            {
                "event": "phase",
                "phase": "train",
                "round": k,
                "total": config.lora.epochs * len(pairs),
            }
        )

        def step(done: int, _total: int, loss: float) -> None:
            ctx.emit({"event": "advance", "phase": "train", "done": done, "loss": loss})

        settings = replace(config.lora, seed=config.lora.seed + k)
        loss = sft(model, tokenizer, pairs, settings, on_step=step)
        model.save_pretrained(str(adapter_dir(ctx.directory, k)))
        write_jsonl(here / "pool.jsonl", [ex.as_json() for ex in pool])
        seconds_before = time.perf_counter() - started
        sft_file.write_text(json.dumps({"loss": loss, "seconds": seconds_before}), "utf-8")
        started = time.perf_counter()
    t_star = best_reward((ex.score, ex.reward) for ex in pool) or manifest.optimal_reward
    writer = PromptModel(
        model,
        tokenizer,
        optimal_reward=t_star,
        fallback=manifest.fallback_prompt,
        instructions=manifest.instructions,
        max_new_tokens=config.max_new_tokens,
    )
    reward, pass_rate = asyncio.run(grade_heldout(k, ctx, writer))
    return (
        RoundInfo(
            round=k,
            train_examples=len(best_examples(pool, config.per_query)),
            train_loss=float(loss),
            heldout_tasks=len(ctx.data.heldout),
            heldout_reward=reward,
            heldout_pass_rate=pass_rate,
            optimal_reward=t_star,
            seconds=round(seconds_before + time.perf_counter() - started, 3),
        ),
        pool,
    )
