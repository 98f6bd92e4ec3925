"""Optimizer strategies (flows over the score table) and the promotion policies."""

from __future__ import annotations

from sipdo.plugins.optimizers.base import (
    Ask,
    Evaluate,
    OptimizerView,
    Request,
    Selection,
    Strategy,
    StrategyFlow,
)
from sipdo.plugins.optimizers.candidates import NewCandidate, candidate_id, render
from sipdo.plugins.optimizers.gates import (
    Evidence,
    ParetoGate,
    PromotionPolicy,
    StatisticalGate,
    StrictGate,
    resolve_gate,
)
from sipdo.plugins.registry import DEFAULT_STRATEGY

__all__ = [
    "DEFAULT_STRATEGY",
    "Ask",
    "Evaluate",
    "Evidence",
    "NewCandidate",
    "OptimizerView",
    "ParetoGate",
    "PromotionPolicy",
    "Request",
    "Selection",
    "StatisticalGate",
    "Strategy",
    "StrategyFlow",
    "StrictGate",
    "candidate_id",
    "render",
    "resolve_gate",
]
