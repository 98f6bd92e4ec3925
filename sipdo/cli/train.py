"""``sipdo train-prompt-model``: train a TRPrompt prompt model on recorded runs.

Progress: rich bars on a terminal (loading, generating, training with the
running loss, held-out grading), one plain line per phase and round otherwise.
The result is a table of the rounds, also kept in the run store.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sipdo.cli.common import (
    DbOption,
    SandboxOption,
    check_sandbox,
    clean_errors,
    console,
    err_console,
    model_option,
    store_url,
)

PromptModelOption = Annotated[
    Path | None,
    typer.Option(
        "--prompt-model",
        help="A prompt model trained by `sipdo train-prompt-model` (its directory): it writes "
        "the learner's system prompt for each task from the prompt given as general "
        "instructions (needs the `train` extra).",
        show_default=False,
    ),
]


def check_prompt_model(directory: Path) -> str:
    """The prompt model directory as an absolute path, checked before a run or eval starts
    (the `train` extra, the manifest, the adapter files); ConfigurationError otherwise."""
    from sipdo.trprompt import require_train_extra
    from sipdo.trprompt.writer import check_prompt_model_dir

    require_train_extra("--prompt-model (using a trained prompt model)")
    path, _round = check_prompt_model_dir(directory)
    return str(path.resolve())


PHASES = {
    "load": "loading the base model",
    "generate": "prompts for training queries",
    "train": "LoRA fine-tuning",
    "heldout": "prompts for held-out queries",
}


class TrainProgress:
    """Folds the trainer's events into progress bars (or plain lines off a terminal)."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.task: Any = None
        self.started = time.monotonic()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "phase":
            label = f"round {event['round']}: {PHASES.get(event['phase'], event['phase'])}"
            if self.progress is None:
                self._line(f"{label} ({event['total']})")
                return
            if self.task is not None:
                self.progress.stop_task(self.task)
            self.task = self.progress.add_task(label, total=event["total"], note="")
        elif kind == "advance" and self.progress is not None and self.task is not None:
            note = f"loss {event['loss']:.3f}" if "loss" in event else ""
            self.progress.update(self.task, completed=event["done"], note=note)
        elif kind == "round_done":
            loss = event["train_loss"]
            reward = event["heldout_reward"]
            shown = "-" if reward is None else f"{reward:.2f}"
            self._line(f"round {event['round']} done: loss {loss:.3f}, held-out reward {shown}")

    def _line(self, text: str) -> None:
        elapsed = int(time.monotonic() - self.started)
        target = self.progress.console if self.progress is not None else err_console
        target.print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {text}", highlight=False)


def rounds_table(rounds: Any) -> Table:
    """One row per finished round."""
    table = Table(title="prompt model rounds")
    for name in ("round", "examples", "loss", "held-out", "reward", "pass rate", "seconds"):
        table.add_column(name, justify="right")
    for r in rounds:
        reward = "-" if r.heldout_reward is None else f"{r.heldout_reward:.2f}"
        rate = "-" if r.heldout_pass_rate is None else f"{r.heldout_pass_rate:.0%}"
        table.add_row(
            str(r.round),
            str(r.train_examples),
            f"{r.train_loss:.3f}",
            str(r.heldout_tasks),
            reward,
            rate,
            f"{r.seconds:.0f}",
        )
    return table


@clean_errors
def train_prompt_model(
    run_ids: Annotated[list[str], typer.Argument(help="Runs whose textual rewards to train on.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Directory of the prompt model (resumed if it exists)."
        ),
    ],
    base_model: Annotated[
        str,
        typer.Option(help="A Hugging Face causal-LM directory, a .gguf file or local:NAME."),
    ] = "local:qwen2.5-coder-0.5b",
    rounds: Annotated[int, typer.Option(min=1, help="Rounds of the iterate loop.")] = 2,
    model: Annotated[
        str | None,
        model_option(
            "--model",
            "SIPDO_MODEL",
            "learner",
            help="Learner that answers under the generated prompts (default: the learner default).",
        ),
    ] = None,
    samples: Annotated[int, typer.Option(min=1, help="Prompts per training query per round.")] = 1,
    per_query: Annotated[
        int, typer.Option(min=1, help="Best prompts per query fine-tuned on.")
    ] = 2,
    heldout_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of the runs' tasks held out of training.")
    ] = 0.25,
    min_rewards: Annotated[
        int, typer.Option(min=1, help="Fewest textual rewards to train on.")
    ] = 8,
    epochs: Annotated[int, typer.Option(min=1, help="SFT epochs per round.")] = 2,
    learning_rate: Annotated[float, typer.Option(min=0.0, help="AdamW learning rate.")] = 2e-4,
    lora_rank: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 8,
    max_new_tokens: Annotated[int, typer.Option(min=8, help="Longest generated prompt.")] = 96,
    max_length: Annotated[
        int, typer.Option(min=64, help="Longest SFT example in tokens (request + prompt).")
    ] = 768,
    seed: Annotated[int, typer.Option(help="Seed of the split, shuffling and sampling.")] = 0,
    domain: Annotated[str, typer.Option(help="Task domain of the runs.")] = "code",
    sandbox: SandboxOption = "auto",
    db: DbOption = None,
) -> None:
    """Train a query-dependent prompt model (TRPrompt) on the runs' textual rewards."""
    from sipdo.cli.scripted import materialize
    from sipdo.store import RunStore
    from sipdo.trprompt import LoraSettings, TrainConfig, require_train_extra, train_prompt_model

    require_train_extra()  # say what to install before anything slow
    check_sandbox(sandbox)
    config = TrainConfig(
        base_model=base_model,
        rounds=rounds,
        domain=domain,
        per_query=per_query,
        samples=samples,
        heldout_fraction=heldout_fraction,
        min_rewards=min_rewards,
        max_new_tokens=max_new_tokens,
        lora=LoraSettings(
            rank=lora_rank,
            alpha=2 * lora_rank,
            epochs=epochs,
            learning_rate=learning_rate,
            max_length=max_length,
            seed=seed,
        ),
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
    )
    learner = materialize({"model": model})["model"]  # the tests' scripted: hook, as in run
    with RunStore(store_url(db)) as store:
        if err_console.is_terminal:
            with Progress(*columns, console=err_console) as progress:
                result = train_prompt_model(
                    store,
                    run_ids,
                    output,
                    config,
                    learner=learner,
                    sandbox_kind=sandbox,
                    on_event=TrainProgress(progress),
                )
        else:
            result = train_prompt_model(
                store,
                run_ids,
                output,
                config,
                learner=learner,
                sandbox_kind=sandbox,
                on_event=TrainProgress(None),
            )
    console.print(rounds_table(result.rounds))
    console.print(f"prompt model: {result.directory} (training {result.training_id})")
