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

# The strategy a run uses unless told otherwise, in every entry point (the library's
# signature in ARCHITECTURE.md says "sipdo"; on the real-model table no strategy x gate
# moved held-out pass@1, README "Optimizer strategies").
DEFAULT_STRATEGY = "sipdo"

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
