"""Model calls and their usage: ``CallStats`` (counts, tokens, latency, queue wait),
the text of a reply, and one plain text call (``ainvoke_text``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from sipdo.errors import ModelOutputError


@dataclass(frozen=True)
class CallStats:
    """Model usage of one or more calls: counts, tokens from ``usage_metadata``, latency.

    ``wait_s`` is the part of ``latency_s`` spent queued before generation started,
    as far as the backend reports it (``response_metadata["queue_wait_s"]``: the
    local models' inference lock); tokens per second are of the rest.
    """

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    wait_s: float = 0.0

    def __add__(self, other: CallStats) -> CallStats:
        return CallStats(
            self.calls + other.calls,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.latency_s + other.latency_s,
            self.wait_s + other.wait_s,
        )

    @classmethod
    def of(cls, message: BaseMessage, latency_s: float) -> CallStats:
        """Stats of one reply (tokens are 0 when the backend reports none)."""
        usage = getattr(message, "usage_metadata", None) or {}
        waited = (getattr(message, "response_metadata", None) or {}).get("queue_wait_s", 0.0)
        return cls(
            1,
            int(usage.get("input_tokens", 0)),
            int(usage.get("output_tokens", 0)),
            latency_s,
            min(float(waited), latency_s) if isinstance(waited, int | float) else 0.0,
        )


@dataclass(frozen=True)
class TextResult:
    """A plain text reply and its usage."""

    text: str
    stats: CallStats


def message_text(message: BaseMessage) -> str:
    """The text content of a message (content blocks joined)."""
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in content)


async def ainvoke_text(model: BaseChatModel, messages: Sequence[BaseMessage]) -> TextResult:
    """One plain call; a backend ``ModelOutputError`` becomes an empty reply."""
    started = time.perf_counter()
    try:
        reply = await model.ainvoke(list(messages))
    except ModelOutputError:
        return TextResult("", CallStats(1, 0, 0, time.perf_counter() - started))
    return TextResult(message_text(reply), CallStats.of(reply, time.perf_counter() - started))
