"""Robust structured output: JSON out of prose, repaired, validated, retried with the error.

The protocol is written once, free of I/O, as a generator that yields the
messages to send and receives the model's reply; ``invoke_structured`` and
``ainvoke_structured`` only drive it. After the retries a *failure record* comes
back (``StructuredResult.ok`` is false) rather than an exception: bad model output
is data the graph records, never a crash. Exceptions from the model itself
(network, ``ScriptExhaustedError``) propagate; a backend's ``ModelOutputError``
counts as one unusable reply.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable
from pydantic import BaseModel, ValidationError

from sipdo.calls import CallStats, TextResult, ainvoke_text, message_text
from sipdo.errors import ModelOutputError
from sipdo.jsonfix import escape_control_chars_in_strings
from sipdo.pycode import PYTHON_TAGS, extract_code, fenced_blocks

__all__ = [  # noqa: RUF022 (the moved names last)
    "ReplyFormat",
    "StructuredResult",
    "ainvoke_structured",
    "extract_json",
    "format_instruction",
    "invoke_structured",
    "json_format",
    "parse_structured",
    # moved out (calls and their usage to sipdo.calls, code in replies to
    # sipdo.pycode); importable from here too, as before
    "PYTHON_TAGS",
    "CallStats",
    "TextResult",
    "ainvoke_text",
    "extract_code",
    "fenced_blocks",
    "message_text",
]

T = TypeVar("T", bound=BaseModel)
T_co = TypeVar("T_co", bound=BaseModel, covariant=True)


@dataclass(frozen=True)
class StructuredResult(Generic[T]):
    """A validated value, or the error that remained after the retries."""

    value: T | None
    error: str | None = None
    attempts: int = 0
    raw: tuple[str, ...] = ()
    stats: CallStats = field(default_factory=CallStats)

    @property
    def ok(self) -> bool:
        """True when ``value`` holds a validated object."""
        return self.value is not None

    @property
    def last_reply(self) -> str:
        """The last reply's text (its final 4,000 characters), kept with a failure."""
        return self.raw[-1][-4000:] if self.raw else ""

    def failure(self, what: str) -> dict[str, Any]:
        """A JSON-safe record of the failure for the run history."""
        last = self.last_reply
        return {
            "what": what,
            "error": self.error or "",
            "attempts": self.attempts,
            "raw": last[:500],
        }


def _balanced(text: str, start: int) -> str | None:
    """The balanced ``{...}`` / ``[...]`` starting at ``start``, string-aware."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


def extract_json(text: str) -> Any:
    """The first JSON object or array in ``text`` (fences and prose around it ignored).

    Raises ``ValueError`` with a message fit to send back to the model.
    """
    candidates = [body for _, body in fenced_blocks(text)] + [text]
    last_error = "no JSON object found in the reply"
    for chunk in candidates:
        for match in re.finditer(r"[{\[]", chunk):
            block = _balanced(chunk, match.start())
            if block is None:
                last_error = "the JSON object is not closed"
                continue
            try:
                return json.loads(escape_control_chars_in_strings(block))
            except json.JSONDecodeError as exc:
                last_error = f"invalid JSON: {exc}"
    raise ValueError(last_error)


def parse_structured(text: str, schema: type[T]) -> T:
    """Validate the JSON in ``text`` against ``schema``; ``ValueError`` names what is wrong."""
    data = extract_json(text)
    if isinstance(data, dict) and len(data) == 1:
        ((key, inner),) = data.items()
        if isinstance(inner, dict) and key.lower() == schema.__name__.lower():
            data = inner
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()[:8]
        )
        raise ValueError(f"the JSON does not match the schema: {problems}") from exc


def format_instruction(schema: type[BaseModel]) -> str:
    """The instruction appended to the last user message of a structured call."""
    spec = json.dumps(schema.model_json_schema(), separators=(",", ":"))
    return f"\n\nReply with one JSON object (no prose) matching this JSON schema:\n{spec}"


@dataclass(frozen=True)
class ReplyFormat(Generic[T_co]):
    """How a structured reply is asked for and read back.

    ``instruction`` is appended to the last user message; ``parse`` turns the
    reply's text into a ``schema`` object or raises ``ValueError`` with a message
    fit to send back to the model; ``retry`` is the request that follows it;
    ``constrained`` asks backends that can (``sipdo_json_schema``) to decode under
    the schema's JSON grammar, which only makes sense for JSON replies.
    """

    schema: type[T_co]
    instruction: str
    parse: Callable[[str], T_co]
    retry: str = "Reply again with only one JSON object matching the schema."
    constrained: bool = False


def json_format(schema: type[T]) -> ReplyFormat[T]:
    """The default format: one JSON object of ``schema``, grammar-constrained where possible."""
    return ReplyFormat(
        schema=schema,
        instruction=format_instruction(schema),
        parse=lambda text: parse_structured(text, schema),
        constrained=True,
    )


def _as_format(spec: type[T] | ReplyFormat[T]) -> ReplyFormat[T]:
    return spec if isinstance(spec, ReplyFormat) else json_format(spec)


def _with_instruction(messages: Sequence[BaseMessage], note: str) -> list[BaseMessage]:
    out = list(messages)
    for i in range(len(out) - 1, -1, -1):
        if isinstance(out[i], HumanMessage):
            out[i] = HumanMessage(content=message_text(out[i]) + note)
            return out
    return [*out, HumanMessage(content=note.strip())]


def _protocol(
    messages: Sequence[BaseMessage], fmt: ReplyFormat[T], retries: int
) -> Generator[list[BaseMessage], tuple[BaseMessage | None, CallStats, str], StructuredResult[T]]:
    """Yields the messages to send; receives (reply or None, stats, error text)."""
    request = _with_instruction(messages, fmt.instruction)
    raw: list[str] = []
    stats = CallStats()
    error = "no attempt made"
    for attempt in range(1, max(0, retries) + 2):
        reply, call_stats, call_error = yield request
        stats = stats + call_stats
        text = message_text(reply) if reply is not None else ""
        raw.append(text)
        if reply is None:
            error = call_error
        else:
            try:
                value = fmt.parse(text)
            except ValueError as exc:
                error = str(exc)
            else:
                return StructuredResult(value, None, attempt, tuple(raw), stats)
        request = [
            *request,
            AIMessage(content=text),
            HumanMessage(content=f"Your reply could not be used: {error}\n{fmt.retry}"),
        ]
    return StructuredResult(None, error, len(raw), tuple(raw), stats)


def _prepare(model: BaseChatModel, fmt: ReplyFormat[Any]) -> Runnable[Any, BaseMessage]:
    if fmt.constrained and getattr(model, "sipdo_json_schema", False):
        return model.bind(json_schema=fmt.schema.model_json_schema())
    return model


def _outcome(
    reply: BaseMessage | None, error: str, started: float
) -> tuple[BaseMessage | None, CallStats, str]:
    elapsed = time.perf_counter() - started
    stats = CallStats.of(reply, elapsed) if reply is not None else CallStats(1, 0, 0, elapsed)
    return reply, stats, error


def _rejected(exc: ModelOutputError) -> str:
    return f"the model backend rejected the output: {exc}"


def invoke_structured(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    schema: type[T] | ReplyFormat[T],
    *,
    retries: int = 2,
) -> StructuredResult[T]:
    """Sync twin of ``ainvoke_structured``."""
    fmt = _as_format(schema)
    runnable = _prepare(model, fmt)
    gen = _protocol(messages, fmt, retries)
    request = next(gen)
    while True:
        started = time.perf_counter()
        try:
            outcome = _outcome(runnable.invoke(request), "", started)
        except ModelOutputError as exc:
            outcome = _outcome(None, _rejected(exc), started)
        try:
            request = gen.send(outcome)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


async def ainvoke_structured(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    schema: type[T] | ReplyFormat[T],
    *,
    retries: int = 2,
) -> StructuredResult[T]:
    """Ask ``model`` for a ``schema`` object; retry ``retries`` times with the parse error.

    ``schema`` is a pydantic model (a JSON reply, see ``json_format``) or a
    ``ReplyFormat`` with its own instruction and parser.
    """
    fmt = _as_format(schema)
    runnable = _prepare(model, fmt)
    gen = _protocol(messages, fmt, retries)
    request = next(gen)
    while True:
        started = time.perf_counter()
        try:
            outcome = _outcome(await runnable.ainvoke(request), "", started)
        except ModelOutputError as exc:
            outcome = _outcome(None, _rejected(exc), started)
        try:
            request = gen.send(outcome)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
