"""The one-rule fallback of a weak optimizer: reading the rule, appending it."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from sipdo.plugins.optimizers.base import Ask
from sipdo.plugins.optimizers.lesson import (
    KNOWN_NOTE,
    MAX_RULE,
    appended_rule,
    parse_lesson,
    with_rule,
)
from sipdo.structured import invoke_structured
from sipdo.testing import ScriptedChatModel


@pytest.mark.parametrize(
    ("reply", "rule"),
    [
        ("RULE: Handle empty inputs first.", "Handle empty inputs first."),
        ("Lessons: k can exceed the length.\n**Rule:** Reduce k modulo n.", "Reduce k modulo n."),
        ("- rule 1. Compare case-insensitively.", "Compare case-insensitively."),
        ("Treat upper and lower case alike.", "Treat upper and lower case alike."),
        ('RULE: "Check the bounds."', "Check the bounds."),
    ],
)
def test_the_rule_is_read_from_a_rule_line_or_a_single_line(reply: str, rule: str) -> None:
    assert parse_lesson(reply).rule == rule


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("The failures come from edge cases.\nThe solver should be careful.", "no line starting"),
        ("", "no line starting"),
        ("RULE: <one general rule>", "placeholder"),
        ("RULE: " + "x" * (MAX_RULE + 1), "characters long"),
    ],
)
def test_anything_else_is_refused_with_a_reason(reply: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_lesson(reply)


def test_a_rule_goes_on_its_own_line_at_the_end_unless_the_text_has_it() -> None:
    assert with_rule("Solve it.\n", "Mind empty lists.") == "Solve it.\nMind empty lists."
    with pytest.raises(ValueError, match="already has the rule"):
        with_rule("Solve it. Mind empty lists!", "mind EMPTY lists")


def _appended(
    replies: list[str], text: str = "Solve it.\nCheck edge cases."
) -> tuple[tuple[str | None, str, str], list[Ask]]:
    """Drive ``appended_rule`` with the scripted replies: its result, and its requests."""
    model = ScriptedChatModel(replies)
    flow = appended_rule(
        [HumanMessage(content="Improve the prompt.")], "(bad edit)", "the edit was unusable", text
    )
    asks: list[Ask] = []
    results: list[Any] | None = None
    while True:
        try:
            batch = next(flow) if results is None else flow.send(results)
        except StopIteration as stop:
            return stop.value, asks
        asks += [r for r in batch if isinstance(r, Ask)]
        results = [invoke_structured(model, r.messages, r.schema) for r in batch]


def test_a_rule_the_prompt_has_is_asked_for_once_more_with_the_rule_named() -> None:
    (text, error, raw), asks = _appended(["RULE: Check edge cases.", "RULE: Handle empty lists."])
    assert text == "Solve it.\nCheck edge cases.\nHandle empty lists."
    assert error == ""
    assert raw == "RULE: Handle empty lists."
    assert len(asks) == 2
    first, second = (a.messages for a in asks)
    assert second[: len(first)] == first  # the same request, and then:
    assert second[-1].content == KNOWN_NOTE.format(rule="Check edge cases.")


def test_a_new_rule_first_time_needs_no_second_request() -> None:
    (text, _, _), asks = _appended(["RULE: Handle empty lists."])
    assert text == "Solve it.\nCheck edge cases.\nHandle empty lists."
    assert len(asks) == 1


def test_a_known_rule_twice_or_an_unusable_second_reply_gives_no_text() -> None:
    (text, error, _), asks = _appended(["RULE: check edge cases", "RULE: Check edge cases!"])
    assert text is None
    assert error.startswith("the edit was unusable; no rule to append either: ")
    assert error.endswith("also when asked for another")
    assert len(asks) == 2
    (text, error, _), _ = _appended(["RULE: check edge cases", "two\nlines", "x\ny", "p\nq"])
    assert text is None
    assert "a known rule, then: " in error
