"""The SIPDO loop as a LangGraph state machine: ``create_sipdo_graph`` and ``Budget``."""

from __future__ import annotations

from sipdo.graph.budget import Budget
from sipdo.graph.builder import create_sipdo_graph
from sipdo.graph.state import InputState, OutputState, SipdoState

__all__ = ["Budget", "InputState", "OutputState", "SipdoState", "create_sipdo_graph"]
