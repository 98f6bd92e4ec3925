"""Escaping raw control characters that llama.cpp's JSON grammar lets into strings."""

from __future__ import annotations

import json

import pytest

from sipdo.plugins.models.jsonfix import escape_control_chars_in_strings


def test_raw_newlines_inside_strings_are_escaped() -> None:
    raw = '{"code": "def f():\n\treturn 1\n", "n": 2}'
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    assert json.loads(escape_control_chars_in_strings(raw)) == {
        "code": "def f():\n\treturn 1\n",
        "n": 2,
    }


def test_layout_outside_strings_and_existing_escapes_are_kept() -> None:
    valid = '{\n  "a": "x\\"y\\n",\n  "b": ["\\\\", "q"]\n}'
    assert escape_control_chars_in_strings(valid) == valid


def test_other_control_characters_become_unicode_escapes() -> None:
    fixed = escape_control_chars_in_strings('{"a": "x\x01y\ry"}')
    assert fixed == '{"a": "x\\u0001y\\ry"}'
    assert json.loads(fixed) == {"a": "x\x01y\ry"}
