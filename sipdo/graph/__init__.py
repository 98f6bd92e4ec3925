"""The SIPDO loop as a LangGraph state machine: ``create_sipdo_graph`` and ``Budget``.

Nodes (one module each): ``setup`` -> ``learner`` (seed tasks) -> ``generator`` ->
``checker`` -> ``verifier`` -> ``learner`` (accepted tasks) -> ``optimizer`` (one
refinement attempt per step) -> ``approve`` (applies a gate-passing prompt,
after ``interrupt()`` when ``approve_prompts``) -> next iteration or ``finish``.
Routing is pure (``routing.py``); the state schema lives in ``state.py``;
progress events are documented in ``events.py``.

Embedding: the compiled graph is a node like any other (``parent.add_node("sipdo",
create_sipdo_graph(model))``); it inherits the parent's checkpointer, streams its
events on ``stream_mode="custom"`` (pass ``subgraphs=True``) and keeps its own
recursion limit, sized from the budget.
"""

from __future__ import annotations

from sipdo.graph.budget import Budget
from sipdo.graph.builder import create_sipdo_graph
from sipdo.graph.state import InputState, OutputState, SipdoState

__all__ = ["Budget", "InputState", "OutputState", "SipdoState", "create_sipdo_graph"]
