"""The sipdo strategy's refinement reply: a tagged prompt, JSON still understood."""

from __future__ import annotations

import json

import pytest

from sipdo.plugins.optimizers.sipdo import REFINEMENT_FORMAT, Refinement, parse_refinement


def test_tagged_prompt_with_rationale() -> None:
    reply = (
        "Here is the improved prompt:\n<prompt>\nYou write Python.\n- Handle empty input.\n"
        "</prompt>\nRATIONALE: two failures crashed on ''.\n"
    )
    assert parse_refinement(reply) == Refinement(
        prompt="You write Python.\n- Handle empty input.",
        rationale="two failures crashed on ''.",
    )


def test_an_unclosed_prompt_ends_at_the_rationale_or_the_reply() -> None:
    # As the local 1.5B model writes it: no closing tag, a "Rationale:" paragraph.
    reply = "<prompt>\nYou write Python.\n\nHandle empty input.\n\nRationale: it crashed on ''."
    assert parse_refinement(reply) == Refinement(
        prompt="You write Python.\n\nHandle empty input.", rationale="it crashed on ''."
    )
    assert parse_refinement("<prompt>Be precise.").prompt == "Be precise."


@pytest.mark.parametrize("label", ["RATIONALE:", "Rationale:"])
def test_a_rationale_written_inside_the_prompt_tags_is_not_part_of_the_prompt(label: str) -> None:
    # Seen in a demo run: the rationale line ended up as the promoted prompt's last line.
    reply = f"<prompt>\nYou write Python.\n- Handle empty input.\n{label} it crashed.\n</prompt>"
    assert parse_refinement(reply) == Refinement(
        prompt="You write Python.\n- Handle empty input.", rationale="it crashed."
    )


def test_a_json_refinement_is_still_understood() -> None:
    reply = json.dumps({"prompt": "Be precise.", "rationale": "r"})
    assert parse_refinement(reply) == Refinement(prompt="Be precise.", rationale="r")


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("<prompt>  </prompt>", "empty"),
        ("<prompt>\nRATIONALE: forgot the prompt", "empty"),
        ("I would add a rule about empty input.", "no <prompt>"),
        ('{"rationale": "no prompt here"}', "does not match the schema"),
    ],
)
def test_unusable_refinements_say_why(reply: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_refinement(reply)


def test_the_format_is_free_text_with_its_own_retry() -> None:
    assert not REFINEMENT_FORMAT.constrained
    assert "<prompt>" in REFINEMENT_FORMAT.instruction
    assert "</prompt>" in REFINEMENT_FORMAT.retry
