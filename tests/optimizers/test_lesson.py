"""The one-rule fallback of a weak optimizer: reading the rule, appending it."""

from __future__ import annotations

import pytest

from sipdo.plugins.optimizers.lesson import MAX_RULE, parse_lesson, with_rule


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
