"""Model plumbing: turn a model spec (name or instance) into a LangChain chat model.

``resolve_model(spec, role=...)`` is the entry point (specs and per-role
defaults are described in ``sipdo.plugins.models.resolve``); the offline
backend is ``ChatLocalLlama`` over llama-cpp-python with a catalogue of
PyPI-shipped GGUF models (``catalog``); ``UsageRecorder`` totals tokens and
latency per role from real responses; ``RetryPolicy`` says how long a server
that is down, hung or rate-limited is retried.
"""

from __future__ import annotations

from sipdo.jsonfix import escape_control_chars_in_strings
from sipdo.plugins.models.catalog import LOCAL_MODELS, LocalModel, ensure_local_model
from sipdo.plugins.models.llama import ChatLocalLlama
from sipdo.plugins.models.resolve import (
    ModelSpec,
    default_model_spec,
    openai_model,
    resolve_model,
)
from sipdo.plugins.models.usage import RoleUsage, UsageRecorder
from sipdo.retry import RetryPolicy

__all__ = [
    "LOCAL_MODELS",
    "ChatLocalLlama",
    "LocalModel",
    "ModelSpec",
    "RetryPolicy",
    "RoleUsage",
    "UsageRecorder",
    "default_model_spec",
    "ensure_local_model",
    "escape_control_chars_in_strings",
    "openai_model",
    "resolve_model",
]
