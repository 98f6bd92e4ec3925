"""Shipped test doubles: ``ScriptedChatModel`` plays any LLM role in tests and demos;
``RuleListStrategy`` is an optimizer strategy without a model."""

from __future__ import annotations

from sipdo.testing.scripted import ScriptedCall, ScriptedChatModel, estimate_tokens
from sipdo.testing.strategies import RuleListStrategy

__all__ = ["RuleListStrategy", "ScriptedCall", "ScriptedChatModel", "estimate_tokens"]
