"""``ChatLocalLlama``: a LangChain chat model over llama-cpp-python, for offline runs.

Why not langchain-community's ``ChatLlamaCpp``: it reports no ``usage_metadata``,
its async path runs the (thread-unsafe) llama.cpp context from executor threads
without a lock, and it would pull in all of langchain-community. This class is
thin: the chat template comes from the GGUF file, a loaded model is shared by
every instance in the process that names the same file, and calls into local
models are serialised by one process-wide lock. Threads: ``n_threads``, else
``$SIPDO_LLAMA_THREADS``, else all cores.

Unconstrained replies carry a repetition guard: a small model at low
temperature can fall into repeating one line (or a short block of lines) until
``max_tokens``, which costs minutes on a CPU; the guard ends such a reply
early (``response_metadata["stopped_repeating"]``) and the caller parses what
came before.

JSON-schema constrained decoding: bind ``json_schema=<dict>`` (``model.bind(
json_schema=schema)``); llama.cpp then samples under a grammar built from the
schema, and raw control characters the grammar lets into strings are escaped
before the text is returned (see ``jsonfix``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from sipdo.errors import ConfigurationError, ModelError, ModelUnavailableError
from sipdo.jsonfix import escape_control_chars_in_strings

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}

_loaded: dict[tuple[str, int], tuple[Any, threading.Lock]] = {}
_load_lock = threading.Lock()
# One lock for every local model in the process: a llama.cpp context is not
# thread-safe, and two models decoding at once on a small CPU each use all cores
# and slow down several-fold together, so concurrency would only cost time.
_infer_lock = threading.Lock()


def default_threads() -> int:
    """``$SIPDO_LLAMA_THREADS`` or the number of cores (fewer helps on a busy machine)."""
    configured = os.environ.get("SIPDO_LLAMA_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return os.cpu_count() or 1


def load_llama(
    path: Path, *, n_ctx: int, n_threads: int | None = None
) -> tuple[Any, threading.Lock]:
    """Load ``path`` once per process (per context size); returns the model and its lock."""
    key = (str(path.resolve()), n_ctx)
    with _load_lock:
        if key in _loaded:
            return _loaded[key]
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelUnavailableError(
                "the local model backend needs llama-cpp-python: pip install 'sipdo[local]'"
            ) from exc
        if not path.is_file():
            raise ModelUnavailableError(f"model file not found: {path}")
        threads = n_threads or default_threads()
        try:
            llama = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelUnavailableError(f"llama.cpp cannot load {path}: {exc}") from exc
        _loaded[key] = (llama, _infer_lock)
        return _loaded[key]


@atexit.register
def _unload_all() -> None:
    # Free the models while the interpreter is still whole: llama-cpp-python's own
    # finalizer at shutdown finds its C bindings gone and prints a TypeError.
    with _load_lock:
        for llama, _lock in _loaded.values():
            with contextlib.suppress(Exception):
                llama.close()
        _loaded.clear()


class RepetitionGuard:
    """A llama.cpp logits processor that ends a reply stuck in a loop: once the
    last lines of the reply are ``repeats`` copies of one block of 1..3 non-blank
    lines, only the end-of-text token may follow."""

    def __init__(self, llama: Any, *, repeats: int = 8, every: int = 8) -> None:
        self._llama = llama
        self._repeats = repeats
        self._every = every
        self._start: int | None = None
        self.tripped = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._start is None:
            self._start = len(input_ids)  # the first call sees only the prompt
        made = len(input_ids) - self._start
        if not self.tripped and made >= 32 and made % self._every == 0:
            tail = self._llama.detokenize(list(input_ids[-400:])).decode("utf-8", "ignore")
            self.tripped = looping(tail, self._repeats)
        if self.tripped:
            eos = self._llama.token_eos()
            keep = scores[eos]
            scores[:] = -float("inf")
            scores[eos] = keep if keep > -float("inf") else 0.0
        return scores


def looping(text: str, repeats: int = 8) -> bool:
    """True when ``text`` ends (ignoring its unfinished last line) with ``repeats``
    copies of the same block of 1..3 non-blank lines."""
    lines = [line.strip() for line in text.split("\n")[:-1]]
    lines = [line for line in lines if line]
    for size in (1, 2, 3):
        need = size * repeats
        if len(lines) < need:
            break
        tail = lines[-need:]
        block = tail[:size]
        if all(tail[i : i + size] == block for i in range(0, need, size)):
            return True
    return False


def _to_llama_message(message: BaseMessage) -> dict[str, Any]:
    role = _ROLES.get(message.type)
    if role is None:
        raise ModelError(f"ChatLocalLlama cannot send a {message.type!r} message")
    content = message.content if isinstance(message.content, str) else message.text
    return {"role": role, "content": content}


class ChatLocalLlama(BaseChatModel):
    """Chat model over a local GGUF file (llama.cpp); one loaded copy per file per process."""

    sipdo_json_schema: ClassVar[bool] = True

    model_path: str
    model_name: str = ""
    temperature: float = 0.2
    max_tokens: int = 1024
    top_p: float = 0.95
    seed: int = 0
    n_ctx: int = 4096
    n_threads: int | None = None
    stop: list[str] | None = Field(default=None)

    @property
    def _llm_type(self) -> str:
        return "sipdo-llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_path": self.model_path,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "n_ctx": self.n_ctx,
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        llama, lock = load_llama(Path(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads)
        schema = kwargs.pop("json_schema", None)
        params: dict[str, Any] = {
            "temperature": kwargs.pop("temperature", self.temperature),
            "max_tokens": kwargs.pop("max_tokens", self.max_tokens),
            "top_p": kwargs.pop("top_p", self.top_p),
            "seed": kwargs.pop("seed", self.seed),
            "stop": stop if stop is not None else self.stop,
            **kwargs,  # anything else llama.cpp's create_chat_completion takes (top_k, ...)
        }
        guard: RepetitionGuard | None = None
        if schema is not None:
            params["response_format"] = {"type": "json_object", "schema": schema}
        elif "logits_processor" not in params:
            from llama_cpp import LogitsProcessorList

            guard = RepetitionGuard(llama)
            params["logits_processor"] = LogitsProcessorList([guard])
        payload = [_to_llama_message(m) for m in messages]
        queued = time.perf_counter()
        try:
            with lock:
                waited = time.perf_counter() - queued
                response = llama.create_chat_completion(messages=payload, **params)
        except TypeError as exc:  # an option create_chat_completion does not know
            raise ConfigurationError(f"bad option for the local model: {exc}") from exc
        except ValueError as exc:  # llama-cpp-python's error type for context overflow etc.
            raise ModelError(f"local model failed: {exc}") from exc
        result = self._to_result(response, constrained=schema is not None)
        metadata = result.generations[0].message.response_metadata
        metadata["queue_wait_s"] = round(waited, 3)  # behind other calls on the model lock
        if guard is not None and guard.tripped:
            metadata["stopped_repeating"] = True
        return result

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # The model lock serialises calls; a thread keeps the event loop free meanwhile.
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)

    def _to_result(self, response: dict[str, Any], *, constrained: bool) -> ChatResult:
        choice = response["choices"][0]
        text = choice["message"].get("content") or ""
        if constrained:
            text = escape_control_chars_in_strings(text)
        usage = response.get("usage") or {}
        tokens_in = int(usage.get("prompt_tokens", 0))
        tokens_out = int(usage.get("completion_tokens", 0))
        name = self.model_name or Path(self.model_path).name
        message = AIMessage(
            content=text,
            usage_metadata=UsageMetadata(
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                total_tokens=tokens_in + tokens_out,
            ),
            response_metadata={"model_name": name, "finish_reason": choice.get("finish_reason")},
        )
        return ChatResult(
            generations=[ChatGeneration(message=message)],
            llm_output={"token_usage": dict(usage), "model_name": name},
        )
