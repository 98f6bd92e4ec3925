"""A prompt model on disk: the manifest and one folder per finished round.

::

    DIR/trprompt.json            what was trained on what, and every finished round
    DIR/round-N/adapter/         the LoRA adapter after round N (never the base weights)
    DIR/round-N/pool.jsonl       every (query, prompt, reward) known after round N
    DIR/round-N/outcomes.jsonl   round N's generated prompts and their grades, one line
                                 each as they finish (an interrupted round resumes here)

A round counts as finished once the manifest lists it; the manifest is written
by rename, so a crash leaves the previous one whole.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.trprompt.dataset import Example

MANIFEST = "trprompt.json"
FORMAT = 1


@dataclass(frozen=True)
class RoundInfo:
    """One finished round, as the manifest and the run store keep it."""

    round: int
    train_examples: int
    train_loss: float
    heldout_tasks: int
    heldout_reward: float | None
    heldout_pass_rate: float | None
    optimal_reward: str
    seconds: float


@dataclass
class Manifest:
    """What a prompt-model directory holds; ``rounds`` grows as rounds finish."""

    training_id: str
    base_model: str
    runs: list[str]
    domain: str
    train_keys: list[str]
    heldout_keys: list[str]
    fallback_prompt: str
    optimal_reward: str
    instructions: str = (
        ""  # the general instructions every request carried (the run's initial prompt)
    )
    settings: dict[str, Any] = field(default_factory=dict)
    rounds: list[RoundInfo] = field(default_factory=list)
    format: int = FORMAT

    @property
    def last_round(self) -> int:
        return self.rounds[-1].round if self.rounds else 0


def round_dir(directory: Path, k: int) -> Path:
    return directory / f"round-{k}"


def adapter_dir(directory: Path, k: int) -> Path:
    return round_dir(directory, k) / "adapter"


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest of ``directory``, None if it has none; ConfigurationError if unreadable."""
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
        rounds = [RoundInfo(**r) for r in data.pop("rounds", [])]
        manifest = Manifest(**data, rounds=rounds)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"{path} is not a prompt-model manifest: {exc}") from exc
    if manifest.format != FORMAT:
        raise ConfigurationError(f"{path} has format {manifest.format}; this sipdo reads {FORMAT}")
    return manifest


def write_manifest(directory: Path, manifest: Manifest) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(asdict(manifest), indent=2) + "\n", "utf-8")
    os.replace(tmp, directory / MANIFEST)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    os.replace(tmp, path)


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of ``path`` ([] if missing); a torn last line (a crash mid-write) is dropped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text("utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def read_pool(directory: Path, k: int) -> list[Example]:
    return [Example(**row) for row in read_jsonl(round_dir(directory, k) / "pool.jsonl")]
