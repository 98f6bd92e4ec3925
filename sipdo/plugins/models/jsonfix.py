"""Moved to ``sipdo.jsonfix`` (the structured-output layer needs it, and core modules do
not import plugins); kept importable from here."""

from __future__ import annotations

from sipdo.jsonfix import escape_control_chars_in_strings

__all__ = ["escape_control_chars_in_strings"]
