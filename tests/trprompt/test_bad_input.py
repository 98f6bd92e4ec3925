"""Bad input to prompt-model training: each a clear error that says what to do."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sipdo.cli import app
from sipdo.errors import ConfigurationError
from sipdo.store import RunStore
from sipdo.trprompt import PromptModel, train_prompt_model
from sipdo.trprompt.base import check_causal_lm, resolve_base
from tests.trprompt.kit import SEEDS, config, record_run

runner = CliRunner()


def write_gguf(path: Path, architecture: str) -> Path:
    """A small but valid GGUF file of ``architecture`` (metadata and one tensor)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_missing_train_extra_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, store: RunStore, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft now fails as if absent
    with pytest.raises(ConfigurationError, match=r"needs the `train` extra, and 'peft'") as err:
        train_prompt_model(store, ["run-1"], tmp_path / "pm", config(tmp_path, rounds=1))
    assert "pip install torch==2.13.0 && pip install 'sipdo[train]'" in str(err.value)
    assert not (tmp_path / "pm").exists()
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    result = runner.invoke(
        app, ["train-prompt-model", "run-1", "-o", str(tmp_path / "x"), "--db", db]
    )
    assert result.exit_code == 1
    assert "needs the `train` extra" in result.output
    assert "sipdo[train]" in result.output


def test_a_base_model_that_is_not_a_causal_lm_is_refused(
    base_dir: Path, store: RunStore, tmp_path: Path
) -> None:
    from transformers import T5Config

    t5 = tmp_path / "t5"
    T5Config(d_model=8, d_ff=16, num_layers=1, num_heads=2, vocab_size=32).save_pretrained(t5)
    with pytest.raises(ConfigurationError, match="is a t5 model, not a causal language model"):
        train_prompt_model(store, ["run-1"], tmp_path / "pm", config(t5, rounds=1))
    assert not (tmp_path / "pm").exists(), "a refused base must not claim the directory"


@pytest.mark.parametrize(
    ("architecture", "message"),
    [
        ("rwkv7", "cannot load GGUF models of architecture 'rwkv7'"),
        ("t5", "is a t5 model, not a causal language model"),
    ],
)
def test_a_gguf_transformers_cannot_load_as_a_causal_lm_is_refused(
    tmp_path: Path, base_dir: Path, architecture: str, message: str
) -> None:
    path = write_gguf(tmp_path / f"{architecture}.gguf", architecture)
    base = resolve_base(str(path))
    assert (base.directory, base.gguf_file) == (tmp_path, path.name)
    with pytest.raises(ConfigurationError, match=message):
        check_causal_lm(base)


def test_unusable_base_model_specs(tmp_path: Path, base_dir: Path) -> None:
    with pytest.raises(ConfigurationError, match="neither a Hugging Face model directory"):
        resolve_base(str(tmp_path / "nothing-here"))
    with pytest.raises(ConfigurationError, match="no such GGUF file"):
        resolve_base(str(tmp_path / "missing.gguf"))
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file" * 10)
    with pytest.raises(ConfigurationError, match="not a readable GGUF model file"):
        check_causal_lm(resolve_base(str(junk)))
    with pytest.raises(ConfigurationError, match="unknown local model 'nope'"):
        resolve_base("local:nope")


def test_too_few_rewards_from_the_cli(base_dir: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'small.db'}"
    with RunStore(db) as store:
        record_run(store, "small", tasks=SEEDS[:3])
    out = tmp_path / "pm"
    result = runner.invoke(
        app,
        ["train-prompt-model", "small", "-o", str(out), "--base-model", str(base_dir), "--db", db],
    )
    assert result.exit_code == 1, result.output
    assert "have 4 textual rewards on 2 verified training tasks" in result.output
    assert "needs at least 8" in result.output
    assert not out.exists()


def test_loading_a_directory_without_a_trained_round(tmp_path: Path, base_dir: Path) -> None:
    with pytest.raises(ConfigurationError, match="holds no trained prompt model"):
        PromptModel.load(tmp_path)
