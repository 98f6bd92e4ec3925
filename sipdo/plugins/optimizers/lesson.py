"""The last resort of a strategy whose optimizer could not write its edit: one rule, appended.

Small optimizer models often cannot follow a strategy's own format: the local
1.5B copies GEPA's component back unchanged and E-SPL's SEARCH/REPLACE
template literally, so a run with it made no candidate at all. After the
strategy's own repair turn has failed too, it asks once more for the smallest
edit there is — one general rule, on one line, from the same failures — and
appends it to the text being edited. For E-SPL that is still a diff edit (an
empty SEARCH part appends); for GEPA it is a reflective rewrite of the
component that keeps all of it. A rule the text already has is asked for once
more, with the rule named: the 1.5B gives the same generic rule ("check edge
cases") to every request, so without that a strategy stalls once it is in. The
candidate records that it came this way, and faces the same acceptance tests as
any other.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, Field

from sipdo.plugins.optimizers.base import Ask, Request
from sipdo.structured import ReplyFormat

# Longer than this is a paragraph, not a rule: small models start rewriting the prompt.
MAX_RULE = 300

_RULE_LINE = re.compile(r"^[\s>*_`#-]*rule\s*\d*\s*[:.)]\s*(.+)$", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"^<[^<>]*>$")


class Lesson(BaseModel):
    """One general rule to add to the prompt."""

    rule: str = Field(min_length=1, max_length=MAX_RULE)


def parse_lesson(text: str) -> Lesson:
    """The rule on the reply's first ``RULE:`` line, or the reply itself when it is a
    single line. ``ValueError`` (fit to send back) for anything else, an angle-bracket
    placeholder copied from the request, or a rule longer than ``MAX_RULE``."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    found = next((m.group(1) for ln in lines if (m := _RULE_LINE.match(ln))), None)
    if found is None:
        if len(lines) != 1:
            raise ValueError("no line starting with RULE:")
        found = lines[0]
    rule = found.strip().strip("*_`\"'").strip()
    if not rule:
        raise ValueError("the RULE: line is empty")
    if _PLACEHOLDER.match(rule):
        raise ValueError(f"the rule {rule!r} is the request's placeholder, not a rule")
    if len(rule) > MAX_RULE:
        raise ValueError(f"the rule is {len(rule)} characters long; one sentence, please")
    return Lesson(rule=rule)


LESSON_FORMAT = ReplyFormat(
    schema=Lesson,
    instruction="\n\nReply with a single line that starts with RULE:",
    parse=parse_lesson,
    retry="Reply again with a single line that starts with RULE: and states one rule.",
)


def lesson_messages(messages: Sequence[BaseMessage], reply: str, reason: str) -> list[BaseMessage]:
    """The conversation so far, the failed reply, and the request for one rule."""
    return [
        *messages,
        AIMessage(content=reply or "(no reply)"),
        HumanMessage(
            content=f"That cannot be used: {reason}. Instead, write ONE new general rule "
            "for the prompt that would have avoided the failures above: a rule for any "
            "task, not about these functions, names or values."
        ),
    ]


KNOWN_NOTE = "The prompt already says: {rule}\nWrite a different rule, one it does not have yet."


class KnownRule(ValueError):
    """The text already has the rule."""


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def with_rule(text: str, rule: str) -> str:
    """``text`` with ``rule`` on a line of its own at the end; ``ValueError`` when the
    text already says it (same words, whatever the case and punctuation)."""
    if _words(rule) and _words(rule) in _words(text):
        raise KnownRule(f"the prompt already has the rule {rule!r}")
    return f"{text.rstrip()}\n{rule}".strip()


def asked_rule(
    messages: Sequence[BaseMessage], reply: str, failed: str, text: str
) -> Generator[list[Request], list[Any], tuple[str | None, str, str]]:
    """The fallback as part of a strategy's flow (``yield from``): one request for a
    rule after ``reply`` failed for the reason ``failed``, and one more if ``text``
    already has that rule. Returns the rule ``text`` does not have yet (None when there
    is no usable one), the error then, and the last reply."""
    request = lesson_messages(messages, reply, failed)
    [lesson] = yield [Ask(request, LESSON_FORMAT)]
    raw = lesson.last_reply or reply
    try:
        if lesson.value is None:
            raise ValueError(lesson.error)
        try:
            with_rule(text, lesson.value.rule)
            return lesson.value.rule, "", raw
        except KnownRule:
            note = HumanMessage(content=KNOWN_NOTE.format(rule=lesson.value.rule))
        [again] = yield [Ask([*request, note], LESSON_FORMAT)]
        raw = again.last_reply or raw
        if again.value is None:
            raise ValueError(f"a known rule, then: {again.error}")
        try:
            with_rule(text, again.value.rule)
            return again.value.rule, "", raw
        except KnownRule as exc:
            raise ValueError(f"{exc}, also when asked for another") from None
    except ValueError as exc:
        return None, f"{failed}; no rule to append either: {exc}", raw


def appended_rule(
    messages: Sequence[BaseMessage], reply: str, failed: str, text: str
) -> Generator[list[Request], list[Any], tuple[str | None, str, str]]:
    """``asked_rule``, with ``text`` returned with the rule appended."""
    rule, error, raw = yield from asked_rule(messages, reply, failed, text)
    return (None if rule is None else with_rule(text, rule)), error, raw
