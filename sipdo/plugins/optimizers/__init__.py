"""Optimizer strategies: the ``Strategy`` protocol and the built-in ``sipdo`` strategy."""

from __future__ import annotations

from sipdo.plugins.optimizers.base import (
    Candidate,
    Proposal,
    ProposalContext,
    Strategy,
    StructuredCaller,
)

__all__ = ["Candidate", "Proposal", "ProposalContext", "Strategy", "StructuredCaller"]
