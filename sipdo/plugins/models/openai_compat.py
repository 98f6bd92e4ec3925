"""``SipdoChatOpenAI``: ChatOpenAI for OpenAI and OpenAI-compatible servers, hardened.

On top of ``langchain_openai.ChatOpenAI`` it adds what the loop relies on:

* a server that is down, hung (no answer within ``timeout`` seconds) or busy
  (408/409/429/5xx) is retried with backoff, honouring ``Retry-After``, for up to
  ``retry_policy.retry_for_s`` seconds from the first failure (and at most
  ``max_retries`` times when that is set); then ``ModelBackendDownError`` names
  the backend (see ``sipdo.retry``). A bad key, an unknown model or a 400 fail
  at once. The openai client's own retries are switched off:
  they stop after a fixed count and cap ``Retry-After`` at a minute;
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

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Self

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI
from pydantic import Field, PrivateAttr, model_validator

from sipdo.errors import ModelBackendDownError, ModelError, ModelOutputError, ModelUnavailableError
from sipdo.jsonfix import escape_control_chars_in_strings
from sipdo.retry import RetryClock, RetryPolicy, next_wait, retry_after

log = logging.getLogger("sipdo.models")

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


RETRIED_STATUS = frozenset({408, 409, 429})


def transient(exc: BaseException) -> bool:
    """True for faults a later attempt can get past: the connection refused or reset (the
    server was killed or is restarting), no answer in time (hung), 408/409/429/5xx (busy)."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRIED_STATUS or exc.status_code >= 500
    return False


def headers_of(exc: BaseException) -> Mapping[str, str] | None:
    """The HTTP response headers carried by an openai status error, if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return headers if isinstance(headers, Mapping) else None


def fault(exc: BaseException, timeout: Any) -> str:
    """A short account of a transient fault, for messages."""
    if isinstance(exc, openai.APITimeoutError):
        return f"no answer within the {timeout or 'default'} s timeout"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        return f"cannot connect ({cause or exc})"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    return f"{type(exc).__name__}: {exc}"


@dataclass
class _Call:
    """Retry bookkeeping of one ``_generate`` call."""

    clock: RetryClock = field(default_factory=RetryClock)
    malformed: int = 0


class SipdoChatOpenAI(ChatOpenAI):
    """ChatOpenAI whose failures are sipdo errors, whose server faults are retried by time
    and whose malformed replies are asked for again."""

    json_schema_mode: Literal["json_schema", "json_object", "none"] = "json_schema"
    malformed_retries: int = 2
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy)
    # Set when the server refused "json_schema" (llama-cpp-python's server only knows
    # "json_object" with a "schema"); later calls go straight to that form.
    _json_object_fallback: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _no_client_retries(self) -> Self:
        # Runs after ChatOpenAI built its clients: this class does the retrying.
        if self.root_client is not None:
            self.root_client = self.root_client.with_options(max_retries=0)
            self.client = self.root_client.chat.completions
        if self.root_async_client is not None:
            self.root_async_client = self.root_async_client.with_options(max_retries=0)
            self.async_client = self.root_async_client.chat.completions
        return self

    @property
    def sipdo_json_schema(self) -> bool:
        """True when ``bind(json_schema=...)`` gives constrained decoding."""
        return self.json_schema_mode != "none"

    @property
    def backend(self) -> str:
        """``<model> at <base URL>``: how messages name this backend."""
        return f"{self.model_name} at {self.openai_api_base or 'https://api.openai.com/v1'}"

    def _policy(self) -> RetryPolicy:
        if self.max_retries is not None and self.retry_policy.max_attempts is None:
            return replace(self.retry_policy, max_attempts=self.max_retries + 1)
        return self.retry_policy

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
        call = _Call()
        while True:
            try:
                result = super()._generate(
                    messages, stop, run_manager, **self._with_format(kwargs, schema)
                )
            except Exception as exc:
                time.sleep(self._after_failure(exc, call, constrained=schema is not None))
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
        call = _Call()
        while True:
            try:
                result = await super()._agenerate(
                    messages, stop, run_manager, **self._with_format(kwargs, schema)
                )
            except Exception as exc:
                await asyncio.sleep(self._after_failure(exc, call, constrained=schema is not None))
                continue
            return _repaired(result) if schema is not None else result

    def _after_failure(self, exc: Exception, call: _Call, *, constrained: bool) -> float:
        """Seconds to wait before sending the request again; raises the sipdo error when
        no other attempt is due."""
        if constrained and self._refused_json_schema(exc):
            return 0.0  # the same request in the other format; not a retry
        if transient(exc):
            return self._backoff(exc, call.clock)
        mapped = map_openai_error(exc, model=self.model_name)
        if isinstance(mapped, ModelOutputError) and call.malformed < self.malformed_retries:
            call.malformed += 1
            return 0.0
        if isinstance(mapped, ModelOutputError):
            mapped = ModelOutputError(f"{mapped} (after {call.malformed + 1} attempts)")
        raise mapped from exc

    def _backoff(self, exc: Exception, clock: RetryClock) -> float:
        now = time.monotonic()
        clock.attempts += 1
        if clock.first_failure is None:
            clock.first_failure = now
        what = fault(exc, self.request_timeout)
        asked = retry_after(headers_of(exc))
        policy = self._policy()
        wait = next_wait(policy, clock, now, asked)
        if wait is None:
            waited = now - clock.first_failure
            if asked is not None and asked > policy.retry_for_s - waited:
                what += f", asks to wait {asked:.0f} s (Retry-After)"
            raise ModelBackendDownError(
                f"model backend {self.backend} unavailable: {what}; gave up after "
                f"{clock.attempts} attempt(s) over {waited:.0f} s "
                f"(retry limit {policy.retry_for_s:g} s)",
                backend=self.backend,
                attempts=clock.attempts,
                waited_s=waited,
            ) from exc
        log.warning(
            "model backend %s: %s; retry %d in %.1f s (giving up %g s after the first failure)",
            self.backend,
            what,
            clock.attempts,
            wait,
            policy.retry_for_s,
        )
        return wait

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
