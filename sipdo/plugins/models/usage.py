"""``UsageRecorder``: a callback handler that totals calls, tokens and latency per role.

Attach it to a model call (``config={"callbacks": [recorder], "metadata":
{"sipdo_role": "generator"}}``) or to a model (``model.with_config(...)``). The
role is read from the run's metadata key ``sipdo_role``, else from a tag
``role:<name>``, else the recorder's ``default_role``. Tokens come from the
message's ``usage_metadata`` when the backend fills it, else from
``llm_output["token_usage"]`` (OpenAI's ``prompt_tokens`` / ``completion_tokens``).
Latency is wall time from the start callback to the end or error callback.
Thread-safe: one recorder can watch concurrent calls.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult

ROLE_METADATA_KEY = "sipdo_role"


@dataclass
class RoleUsage:
    """Running totals for one role."""

    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for the run store), including ``total_tokens``."""
        return {**asdict(self), "total_tokens": self.total_tokens}


def _role_of(metadata: dict[str, Any] | None, tags: list[str] | None, default: str) -> str:
    if metadata and isinstance(metadata.get(ROLE_METADATA_KEY), str):
        return str(metadata[ROLE_METADATA_KEY])
    for tag in tags or []:
        if tag.startswith("role:"):
            return tag.removeprefix("role:")
    return default


def tokens_of(response: LLMResult) -> tuple[int, int]:
    """(input, output) tokens of one model response, 0 when the backend reports none."""
    tokens_in = tokens_out = 0
    found = False
    for generations in response.generations:
        for generation in generations:
            message = generation.message if isinstance(generation, ChatGeneration) else None
            if isinstance(message, AIMessage) and message.usage_metadata:
                tokens_in += message.usage_metadata["input_tokens"]
                tokens_out += message.usage_metadata["output_tokens"]
                found = True
    if not found:
        usage = (response.llm_output or {}).get("token_usage") or {}
        tokens_in = int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0)
        tokens_out = int(usage.get("completion_tokens") or usage.get("output_tokens") or 0)
    return tokens_in, tokens_out


class UsageRecorder(BaseCallbackHandler):
    """Totals per role of calls, errors, input/output tokens and latency."""

    def __init__(self, default_role: str = "unknown") -> None:
        self.default_role = default_role
        self._lock = threading.Lock()
        self._pending: dict[UUID, tuple[str, float]] = {}
        self._usage: dict[str, RoleUsage] = {}

    def snapshot(self) -> dict[str, RoleUsage]:
        """A copy of the totals so far, by role."""
        with self._lock:
            return {role: RoleUsage(**asdict(u)) for role, u in self._usage.items()}

    def _start(self, run_id: UUID, metadata: dict[str, Any] | None, tags: list[str] | None) -> None:
        role = _role_of(metadata, tags, self.default_role)
        with self._lock:
            self._pending[run_id] = (role, time.perf_counter())

    def _finish(self, run_id: UUID, tokens: tuple[int, int] | None) -> None:
        with self._lock:
            role, started = self._pending.pop(run_id, (self.default_role, time.perf_counter()))
            usage = self._usage.setdefault(role, RoleUsage())
            usage.calls += 1
            usage.latency_s += time.perf_counter() - started
            if tokens is None:
                usage.errors += 1
            else:
                usage.input_tokens += tokens[0]
                usage.output_tokens += tokens[1]

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, metadata, tags)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, metadata, tags)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, tokens_of(response))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, None)
