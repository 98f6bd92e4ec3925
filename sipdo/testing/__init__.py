"""Shipped test doubles: ``ScriptedChatModel`` plays any LLM role in tests and demos."""

from __future__ import annotations

from sipdo.testing.scripted import ScriptedCall, ScriptedChatModel, estimate_tokens

__all__ = ["ScriptedCall", "ScriptedChatModel", "estimate_tokens"]
