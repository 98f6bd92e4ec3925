"""The optional ``train`` extra (torch, transformers, peft): imported only when used."""

from __future__ import annotations

import importlib
from types import ModuleType

from sipdo.errors import ConfigurationError

INSTALL_HINT = (
    "in a checkout run scripts/setup.sh --train; else install the extra with: "
    "pip install torch==2.13.0 && pip install 'sipdo[train]' "
    "(torch's CPU build first; on a machine without that wheel on disk: "
    "pip install torch --index-url https://download.pytorch.org/whl/cpu)"
)
MODULES = ("torch", "transformers", "peft", "gguf")


def require_train_extra(purpose: str = "training a prompt model") -> dict[str, ModuleType]:
    """The extra's modules by name; a ConfigurationError saying how to install what is missing.

    Also quiets transformers' own load bars and warnings: sipdo shows its own progress.
    """
    modules: dict[str, ModuleType] = {}
    for name in MODULES:
        try:
            modules[name] = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigurationError(
                f"{purpose} needs the `train` extra, and {name!r} is not "
                f"installed ({exc}); {INSTALL_HINT}"
            ) from exc
    logging = importlib.import_module("transformers.utils.logging")
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    return modules
