"""sipdo: a closed-loop, self-improving prompt optimizer with verified synthetic tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "create_sipdo_graph"]

if TYPE_CHECKING:
    from sipdo.graph import create_sipdo_graph


def __getattr__(name: str) -> Any:
    # Lazy so that `import sipdo.sandbox` does not pull in LangGraph.
    if name == "create_sipdo_graph":
        from sipdo.graph import create_sipdo_graph

        return create_sipdo_graph
    raise AttributeError(f"module 'sipdo' has no attribute {name!r}")
