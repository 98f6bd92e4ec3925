"""``ScriptedChatModel``: a real chat model that replays a script, for tests and demos.

Unlike the fakes in ``langchain-core`` it never wraps around: a call past the end
of the script raises ``ScriptExhaustedError`` saying how many responses were
scripted. Every call is logged in ``.calls`` (messages and call kwargs), and
every reply carries estimated ``usage_metadata`` so token budgets work.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from sipdo.errors import ScriptExhaustedError

Response = str | AIMessage | dict[str, Any] | BaseModel | Exception
Responder = Callable[[list[BaseMessage]], Response]


@dataclass(frozen=True)
class ScriptedCall:
    """One call the model received: the messages and the call's keyword arguments."""

    messages: list[BaseMessage]
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """All message contents joined, handy for assertions."""
        return "\n".join(_content_text(m) for m in self.messages)


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token), never zero for non-empty text."""
    return (len(text) + 3) // 4


def _content_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in content)


def _to_message(response: Response) -> AIMessage:
    if isinstance(response, AIMessage):
        return response
    if isinstance(response, BaseModel):
        return AIMessage(content=response.model_dump_json())
    if isinstance(response, dict):
        return AIMessage(content=json.dumps(response))
    if isinstance(response, str):
        return AIMessage(content=response)
    raise TypeError(f"unsupported scripted response type {type(response).__name__}")


class ScriptedChatModel(BaseChatModel):
    """Returns scripted responses in order (or from ``responder(messages)``).

    ``responses`` items are ``str``, ``AIMessage``, ``dict`` / pydantic models
    (sent as JSON text) or exceptions (raised when reached). ``delay_s`` sleeps
    before each reply (``asyncio.sleep`` on the async path).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    responses: list[Any] = Field(default_factory=list)
    responder: Callable[[list[BaseMessage]], Any] | None = None
    delay_s: float = 0.0
    name: str | None = "scripted"

    _calls: list[ScriptedCall] = PrivateAttr(default_factory=list)
    _index: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(
        self,
        responses: Sequence[Response] = (),
        *,
        responder: Responder | None = None,
        delay_s: float = 0.0,
        name: str = "scripted",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            responses=list(responses), responder=responder, delay_s=delay_s, name=name, **kwargs
        )

    @property
    def _llm_type(self) -> str:
        return "sipdo-scripted"

    @property
    def calls(self) -> list[ScriptedCall]:
        """Every call received so far, in order."""
        return list(self._calls)

    @property
    def remaining(self) -> int:
        """Scripted responses not used yet (0 in responder mode)."""
        return max(0, len(self.responses) - self._index)

    def _next(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
        with self._lock:
            self._calls.append(ScriptedCall(list(messages), dict(kwargs)))
            if self.responder is not None:
                response = self.responder(list(messages))
            else:
                if self._index >= len(self.responses):
                    raise ScriptExhaustedError(
                        f"{self.name}: call {self._index + 1} but only "
                        f"{len(self.responses)} responses were scripted"
                    )
                response = self.responses[self._index]
                self._index += 1
        if isinstance(response, Exception):
            raise response
        message = _to_message(response)
        if message.usage_metadata is None:
            prompt_tokens = sum(estimate_tokens(_content_text(m)) for m in messages)
            out_tokens = estimate_tokens(_content_text(message))
            message = message.model_copy(
                update={
                    "usage_metadata": {
                        "input_tokens": prompt_tokens,
                        "output_tokens": out_tokens,
                        "total_tokens": prompt_tokens + out_tokens,
                    }
                }
            )
        return message

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay_s:
            time.sleep(self.delay_s)
        return ChatResult(generations=[ChatGeneration(message=self._next(messages, kwargs))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return ChatResult(generations=[ChatGeneration(message=self._next(messages, kwargs))])
