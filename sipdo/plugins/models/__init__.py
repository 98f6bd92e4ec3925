"""Model plumbing: turn a model spec (name or instance) into a LangChain chat model.

Minimal first version; the local llama.cpp backend and role defaults extend it.
"""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from sipdo.errors import ConfigurationError, ModelUnavailableError

ModelSpec = str | BaseChatModel


def resolve_model(spec: ModelSpec | None, *, role: str = "learner") -> BaseChatModel:
    """Return a chat model for ``spec``: an instance is returned as is, a string goes
    through ``init_chat_model``."""
    if isinstance(spec, BaseChatModel):
        return spec
    if spec is None:
        raise ConfigurationError(f"no model given for role {role!r}")
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigurationError(f"model for role {role!r} must be a name or a chat model")
    from langchain.chat_models import init_chat_model  # type: ignore[import-not-found]

    try:
        model: BaseChatModel = init_chat_model(spec)
    except Exception as exc:
        raise ModelUnavailableError(f"cannot load model {spec!r} for {role}: {exc}") from exc
    return model
