"""Repair the one defect llama.cpp's JSON grammars let through: raw control characters.

llama-cpp-python 0.3.x turns a JSON schema into a GBNF grammar whose string rule
accepts any character except ``"`` and ``\\``, so a model writing code into a
JSON string emits real newlines and tabs, which ``json.loads`` rejects. The text
is otherwise valid JSON; escaping control characters inside strings fixes it
without touching anything outside strings.
"""

from __future__ import annotations

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def escape_control_chars_in_strings(text: str) -> str:
    """Return ``text`` with raw control characters inside JSON strings escaped.

    Characters outside strings (indentation newlines) are kept as they are, and
    existing escapes are left alone, so valid JSON comes back unchanged.
    """
    out: list[str] = []
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            elif ch < " ":
                out.append(_ESCAPES.get(ch, f"\\u{ord(ch):04x}"))
                continue
        elif ch == '"':
            in_string = True
        out.append(ch)
    return "".join(out)
