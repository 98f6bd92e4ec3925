"""``SipdoGraph``: the compiled sipdo graph, which keeps its own recursion limit.

A full run takes more graph steps than LangGraph's default limit of 25 (about
46 for the default budget; ``builder.recursion_limit`` sizes it from the
budget). A parent graph passes its own ``recursion_limit`` down to a subgraph
(LangGraph's default 25 included), which would cut an embedded run off with
``GraphRecursionError``. So a run of this graph uses the larger of the limit it
is given and its own: a parent can raise the limit, never lower it below what
the budget needs. Nothing else about the compiled graph changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph


class SipdoGraph(CompiledStateGraph[Any, Any, Any, Any]):
    """A ``CompiledStateGraph`` whose runs take at least its own ``recursion_limit``."""

    def _at_least_own(self, config: RunnableConfig | None) -> RunnableConfig | None:
        own = (self.config or {}).get("recursion_limit")
        if config is None or own is None or config.get("recursion_limit", 0) >= own:
            return config
        return {**config, "recursion_limit": own}

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        return super().stream(input, self._at_least_own(config), **kwargs)

    def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        return super().astream(input, self._at_least_own(config), **kwargs)
