"""What one server process shares between runs: settings, one sandbox, resolved models.

LangGraph Server calls the graph factory for every run (and for schema and state
reads), so anything costly lives here, once per process: the sandbox (a Docker
warm pool bounds how many verifications run at once, whatever the number of
runs), the chat models (a local model is loaded once, never inside a request
without a log line) and the compiled graphs per distinct configuration.
``start`` / ``close`` are called by the server's lifespan (``sipdo.serve.app``);
without it the first factory call starts the runtime and interpreter exit closes it.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph

from sipdo.errors import ConfigurationError
from sipdo.plugins.models import resolve_model
from sipdo.sandbox import Sandbox
from sipdo.serve.config import ROLE_FIELDS, ServeConfig, ServerSettings

log = logging.getLogger("sipdo.serve")

GRAPH_CACHE_SIZE = 64

NO_MODEL = (
    "no model is configured for the served sipdo graph. Set SIPDO_MODEL (and optionally "
    "SIPDO_GENERATOR_MODEL, SIPDO_CHECKER_MODEL, SIPDO_OPTIMIZER_MODEL) in the server's "
    "environment, e.g. SIPDO_MODEL=openai:gpt-4o-mini, "
    "SIPDO_MODEL=openai:qwen@http://127.0.0.1:8000/v1 for an OpenAI-compatible server, or "
    "SIPDO_MODEL=local:qwen2.5-coder-0.5b for the offline model (prepared at start); "
    "or set OPENAI_API_KEY"
)


class ServeRuntime:
    """Process-wide state of a served sipdo graph (see the module docstring)."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.sandboxes_opened = 0
        self.graphs_built = 0
        self._sandbox: Sandbox | None = None
        self._models: dict[tuple[str, str], BaseChatModel] = {}  # (role, spec)
        self._graphs: OrderedDict[str, CompiledStateGraph[Any, Any, Any, Any]] = OrderedDict()
        self._lock = threading.RLock()
        self._started = False

    def start(self) -> None:
        """Refuse a deployment without a model; resolve the default models and open the
        sandbox now rather than inside the first request."""
        with self._lock:
            if self._started:
                return
            if not self.settings.configured:
                raise ConfigurationError(NO_MODEL)
            for role, spec in self.settings.models.items():
                self.model(role, spec, at_start=True)
            self.sandbox()
            self._started = True

    def sandbox(self) -> Sandbox:
        """The one sandbox of this process, opened on first use."""
        with self._lock:
            if self._sandbox is None:
                from sipdo.sandbox.factory import open_sandbox

                pool = self.settings.sandbox_pool
                options: dict[str, Any] = {} if pool is None else {"pool_size": pool}
                self._sandbox = open_sandbox(self.settings.sandbox, **options)
                self.sandboxes_opened += 1
                log.info("sipdo serve: sandbox opened (%s)", type(self._sandbox).__name__)
            return self._sandbox

    def model(self, role: str, spec: str, *, at_start: bool = False) -> BaseChatModel:
        """The chat model for ``spec`` in ``role``, resolved once per process and shared by
        runs (per role: a local model's output cap depends on the role; its weights are
        loaded once per file whatever the roles)."""
        with self._lock:
            found = self._models.get((role, spec))
            if found is not None:
                return found
            local = spec.startswith("local:") or spec.endswith(".gguf")
            if local:
                when = "at server start" if at_start else "inside a request"
                log.warning(
                    "sipdo serve: loading local model %s for %s %s "
                    "(may install and join its weights first)",
                    spec,
                    role,
                    when,
                )
            model = resolve_model(spec, role=role)
            self._models[role, spec] = model
            return model

    def register_model(self, spec: str, model: BaseChatModel) -> None:
        """Serve ``model`` under the name ``spec`` (a custom or in-house chat model, or a
        scripted one in tests); requests may then name it."""
        with self._lock:
            for role in ROLE_FIELDS:
                self._models[role, spec] = model
            if spec not in self.settings.allowed_models:
                self.settings = replace(
                    self.settings, allowed_models=(*self.settings.allowed_models, spec)
                )

    def status(self) -> dict[str, Any]:
        """What ``GET /sipdo/status`` reports."""
        with self._lock:
            return {
                "started": self._started,
                "sandbox": type(self._sandbox).__name__ if self._sandbox else None,
                "sandbox_concurrency": getattr(self._sandbox, "max_concurrency", None),
                "sandboxes_opened": self.sandboxes_opened,
                "graphs_built": self.graphs_built,
                "models": dict(self.settings.models),
                "allowed_models": list(self.settings.allowed_models),
            }

    def graph(self, config: ServeConfig) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The compiled graph for ``config`` (cached: equal settings, the same graph)."""
        key = config.model_dump_json()
        with self._lock:
            cached = self._graphs.get(key)
            if cached is not None:
                self._graphs.move_to_end(key)
                return cached
        graph = self._build(config)
        with self._lock:
            self._graphs[key] = graph
            self.graphs_built += 1
            while len(self._graphs) > GRAPH_CACHE_SIZE:
                self._graphs.popitem(last=False)
        return graph

    def _build(self, config: ServeConfig) -> CompiledStateGraph[Any, Any, Any, Any]:
        from sipdo.graph.builder import create_sipdo_graph

        models = {
            role: self.model(role, self.settings.model_for(role, config)) for role in ROLE_FIELDS
        }
        return create_sipdo_graph(
            models["learner"],
            generator_model=models["generator"],
            checker_model=models["checker"],
            optimizer_model=models["optimizer"],
            domain=config.domain or self.settings.domain,
            strategy=config.strategy or self.settings.strategy,
            sandbox=self.sandbox(),
            budget=config.budget.to_budget(),
            approve_prompts=config.approve_prompts,
            gate=config.gate,
            seed=config.seed,
            allow_specific=config.allow_specific,
            holdout=config.holdout,
            stop_on_holdout_drop=config.stop_on_holdout_drop,
            demonstrations=config.demonstrations,
            context_schema=ServeConfig,
        )

    def close(self) -> None:
        """Close the sandbox (the next use opens a new one) and forget the graphs."""
        with self._lock:
            sandbox, self._sandbox = self._sandbox, None
            self._graphs.clear()
            self._started = False
        if sandbox is not None:
            sandbox.close()
            log.info("sipdo serve: sandbox closed")


_runtime: ServeRuntime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> ServeRuntime:
    """This process's runtime, made from the environment on first use."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = ServeRuntime(ServerSettings.from_env())
            atexit.register(_runtime.close)
        return _runtime


def reset_runtime() -> None:
    """Close and forget this process's runtime (tests; a changed environment)."""
    global _runtime
    with _runtime_lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.close()
        atexit.unregister(runtime.close)
