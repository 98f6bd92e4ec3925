"""Shipped test doubles: ``ScriptedChatModel`` plays any LLM role in tests and demos;
``RuleListStrategy`` is an optimizer strategy without a model; ``SumDomain`` the
smallest complete task domain."""

from __future__ import annotations

from sipdo.testing.domains import SumDomain
from sipdo.testing.scripted import ScriptedCall, ScriptedChatModel, estimate_tokens
from sipdo.testing.strategies import RuleListStrategy

__all__ = [
    "RuleListStrategy",
    "ScriptedCall",
    "ScriptedChatModel",
    "SumDomain",
    "estimate_tokens",
]
