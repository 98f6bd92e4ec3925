"""``SipdoChatOpenAI``: ChatOpenAI for OpenAI and OpenAI-compatible servers, hardened.

On top of ``langchain_openai.ChatOpenAI`` it adds what the loop relies on:

* transport failures (5xx, 429, connection resets, timeouts) are retried by the
  openai client (``max_retries``); what is still failing after that is raised
  as ``ModelUnavailableError``;
* a response that arrives but is malformed (not JSON, no ``choices``) is asked
  for again up to ``malformed_retries`` times, then ``ModelOutputError``;
* every other openai error becomes a ``ModelError``, raised ``from`` the
  original, so callers catch one tree;
* ``bind(json_schema=<dict>)`` asks for schema-constrained output through
  ``response_format`` (``json_schema_mode``: ``"json_schema"`` as OpenAI and vLLM
  take it, ``"json_object"`` for servers that take ``{"type": "json_object",
  "schema": ...}`` (llama-cpp-python's), or ``"none"``). A server that answers
  400/422 to ``"json_schema"`` is asked again in the ``json_object`` form, and
  that form is kept for the model's later calls.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr

from sipdo.errors import ModelError, ModelOutputError, ModelUnavailableError
from sipdo.plugins.models.jsonfix import escape_control_chars_in_strings

_MALFORMED = (
    openai.APIResponseValidationError,
    json.JSONDecodeError,
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
)
_UNAVAILABLE = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.InternalServerError,
    openai.RateLimitError,
    openai.AuthenticationError,
    openai.PermissionDeniedError,
    openai.NotFoundError,
)


def map_openai_error(exc: Exception, *, model: str) -> ModelError:
    """The sipdo error for an exception raised while calling an OpenAI-style API."""
    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, _UNAVAILABLE):
        return ModelUnavailableError(f"model {model!r} unavailable: {exc}")
    if isinstance(exc, openai.APIError):
        return ModelError(f"model {model!r} rejected the request: {exc}")
    if isinstance(exc, _MALFORMED):
        return ModelOutputError(f"model {model!r} sent a malformed response: {exc}")
    return ModelError(f"model {model!r} failed: {type(exc).__name__}: {exc}")


class SipdoChatOpenAI(ChatOpenAI):
    """ChatOpenAI whose failures are sipdo errors and whose malformed replies are retried."""

    json_schema_mode: Literal["json_schema", "json_object", "none"] = "json_schema"
    malformed_retries: int = 2
    # Set when the server refused "json_schema" (llama-cpp-python's server only knows
    # "json_object" with a "schema"); later calls go straight to that form.
    _json_object_fallback: bool = PrivateAttr(default=False)

    @property
    def sipdo_json_schema(self) -> bool:
        """True when ``bind(json_schema=...)`` gives constrained decoding."""
        return self.json_schema_mode != "none"

    def _with_format(self, kwargs: dict[str, Any], schema: Any) -> dict[str, Any]:
        if schema is None or self.json_schema_mode == "none":
            return kwargs
        if self.json_schema_mode == "json_object" or self._json_object_fallback:
            return {**kwargs, "response_format": {"type": "json_object", "schema": schema}}
        json_schema = {"name": "sipdo_output", "schema": schema, "strict": False}
        return {**kwargs, "response_format": {"type": "json_schema", "json_schema": json_schema}}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        schema = kwargs.pop("json_schema", None)
        attempt = 0
        while True:
            try:
                result = super()._generate(
                    messages, stop, run_manager, **self._with_format(kwargs, schema)
                )
            except Exception as exc:
                attempt = self._next_attempt(exc, attempt, constrained=schema is not None)
                continue
            return _repaired(result) if schema is not None else result

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        schema = kwargs.pop("json_schema", None)
        attempt = 0
        while True:
            try:
                result = await super()._agenerate(
                    messages, stop, run_manager, **self._with_format(kwargs, schema)
                )
            except Exception as exc:
                attempt = self._next_attempt(exc, attempt, constrained=schema is not None)
                continue
            return _repaired(result) if schema is not None else result

    def _next_attempt(self, exc: Exception, attempt: int, *, constrained: bool) -> int:
        """Raise the sipdo error for ``exc`` unless another attempt is due; return its number."""
        if constrained and self._refused_json_schema(exc):
            return attempt  # same request in the other format; not a retry
        mapped = map_openai_error(exc, model=self.model_name)
        if not isinstance(mapped, ModelOutputError) or attempt >= self.malformed_retries:
            if isinstance(mapped, ModelOutputError):
                mapped = ModelOutputError(f"{mapped} (after {attempt + 1} attempts)")
            raise mapped from exc
        return attempt + 1

    def _refused_json_schema(self, exc: Exception) -> bool:
        # llama-cpp-python's server rejects it with a 500 that quotes the field.
        refused = (
            isinstance(exc, openai.APIStatusError)
            and (exc.status_code in (400, 422) or "response_format" in str(exc))
            and self.json_schema_mode == "json_schema"
            and not self._json_object_fallback
        )
        if refused:
            self._json_object_fallback = True
        return refused


def _repaired(result: ChatResult) -> ChatResult:
    for generation in result.generations:
        content = generation.message.content
        if isinstance(content, str):
            generation.message.content = escape_control_chars_in_strings(content)
            generation.text = generation.message.content
    return result
