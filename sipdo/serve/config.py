"""What a served run can be configured with, and the server's own settings.

``ServeConfig`` is the graph's context schema: LangGraph Server shows it under
``GET /assistants/{id}/schemas`` (``context_schema``), and an assistant's or a
run's ``context`` (or ``config.configurable``) fills it. Settings an assistant
gives are merged key by key with the run's (the run wins); a nested ``budget``
is replaced whole.

``ServerSettings`` comes from the environment of the server process: the
deployment's default models (``SIPDO_MODEL`` and the role variables, or
``OPENAI_API_KEY``), the sandbox backend (``SIPDO_SANDBOX``: auto, docker or
process; ``SIPDO_SANDBOX_POOL``: Docker's warm pool size) and which model
specs a request may name (``SIPDO_SERVE_MODELS``). A request may not pick an
arbitrary model endpoint: ``openai:<name>@<url>`` sends the server's API key to
``<url>``, so only the configured specs and the ``SIPDO_SERVE_MODELS`` patterns
are accepted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sipdo.errors import ConfigurationError
from sipdo.graph.budget import Budget
from sipdo.plugins.models.resolve import ROLE_ENV, default_model_spec
from sipdo.plugins.registry import DEFAULT_STRATEGY

ROLE_FIELDS = {
    "learner": "model",
    "generator": "generator_model",
    "checker": "checker_model",
    "optimizer": "optimizer_model",
}
SANDBOX_KINDS = ("auto", "docker", "process")

# A served run without a budget of its own stops here: a request must not be able to
# spend without bound against a paid API. ``null`` in a request lifts a cap.
SERVED_MODEL_CALLS = 200
SERVED_TOKENS = 400_000
SERVED_SANDBOX_SECONDS = 900.0


class BudgetConfig(BaseModel):
    """``sipdo.graph.Budget`` as JSON, with caps on calls, tokens and sandbox time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iterations: int = Field(3, ge=1, description="SIPDO iterations at most")
    model_calls: int | dict[str, int] | None = Field(
        SERVED_MODEL_CALLS,
        description="cap on model calls: a total, or a cap per role; null: none",
    )
    tokens: int | dict[str, int] | None = Field(
        SERVED_TOKENS, description="cap on input + output tokens: a total or per role"
    )
    sandbox_seconds: float | None = Field(
        SERVED_SANDBOX_SECONDS, ge=0, description="cap on sandbox wall time"
    )
    max_refinements: int = Field(3, ge=1, description="optimizer steps per iteration")
    tasks_per_iteration: int = Field(2, ge=1, description="tasks generated per iteration")

    def to_budget(self) -> Budget:
        return Budget(**self.model_dump())


class ServeConfig(BaseModel):
    """Per-assistant / per-run settings of a served sipdo graph.

    Model specs (``model`` for the learner, one per other role) are the strings
    ``resolve_model`` takes; a role left unset shares ``model`` when that is set,
    else takes the server's default. Names of the
    domain, strategy and gate are registered plugin names.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, title="SipdoContext")

    model: str | None = Field(None, description="learner model spec (default: the server's)")
    generator_model: str | None = Field(None, description="generator model spec")
    checker_model: str | None = Field(None, description="checker model spec")
    optimizer_model: str | None = Field(None, description="optimizer model spec")
    domain: str | None = Field(None, description="task domain (default: SIPDO_DOMAIN or code)")
    strategy: str | None = Field(
        None, description="optimizer strategy (default: SIPDO_STRATEGY or sipdo)"
    )
    gate: str = Field("statistical", description="promotion policy: statistical, strict, pareto")
    seed: int = Field(0, description="seed of the strategies' randomness")
    approve_prompts: bool = Field(
        False, description="pause on interrupt() before a prompt is promoted"
    )
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    allow_specific: bool = Field(
        False, description="promote candidates specific to the training tasks (kept back)"
    )
    holdout: str | None = Field(
        None,
        description="held-out benchmark graded for the initial and each promoted prompt, "
        "NAME[:N] (e.g. humaneval:40); task files are not read on a server",
        pattern=r"^[A-Za-z][A-Za-z0-9_-]*(:[0-9]+)?$",
    )
    stop_on_holdout_drop: bool = Field(
        False, description="end a run whose held-out pass@1 falls below its best"
    )
    demonstrations: int = Field(
        0,
        ge=0,
        le=16,
        description="verified demonstrations a candidate may carry (0: none); "
        "they come from the run's own verified tasks, never from the held-out set",
    )

    @field_validator("holdout")
    @classmethod
    def _a_benchmark(cls, value: str | None) -> str | None:
        """Only a named benchmark: a served request never makes the server read a file."""
        from sipdo.evaluation.benchmarks import BENCHMARKS

        if value is not None and value.partition(":")[0].lower() not in BENCHMARKS:
            raise ValueError(f"not a held-out benchmark; available: {', '.join(BENCHMARKS)}")
        return value


FIELDS = frozenset(ServeConfig.model_fields)


def validation_message(exc: ValidationError) -> str:
    """One line per problem, naming the setting: ``budget.iterations: Input should be ...``."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)


def parse_config(values: Mapping[str, Any] | None, *, strict: bool = False) -> ServeConfig:
    """A ``ServeConfig`` from a ``context`` / ``configurable`` mapping.

    Keys that are not settings are ignored (``configurable`` also carries the
    server's ``thread_id``, ``run_id``, ...) unless ``strict``, as for a
    ``context``, where an unknown key is a typo the server would drop silently.
    ``ConfigurationError`` names every bad setting.
    """
    values = dict(values or {})
    if strict:
        unknown = sorted(set(values) - FIELDS)
        if unknown:
            raise ConfigurationError(
                f"unknown sipdo setting(s) {', '.join(unknown)}; known: {', '.join(sorted(FIELDS))}"
            )
    try:
        return ServeConfig.model_validate({k: v for k, v in values.items() if k in FIELDS})
    except ValidationError as exc:
        raise ConfigurationError(f"invalid sipdo configuration: {validation_message(exc)}") from exc


def _env(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


@dataclass(frozen=True)
class ServerSettings:
    """The server process's settings (from the environment, read once at start)."""

    models: dict[str, str]  # role -> default spec
    configured: bool  # a model was named (SIPDO_*MODEL or OPENAI_API_KEY), not the offline default
    allowed_models: tuple[str, ...]  # fnmatch patterns a request's model spec must match
    sandbox: str = "auto"
    sandbox_pool: int | None = None  # Docker warm containers (SIPDO_SANDBOX_POOL)
    domain: str = "code"
    strategy: str = DEFAULT_STRATEGY

    @classmethod
    def from_env(cls) -> ServerSettings:
        # As in create_sipdo_graph: a role without its own model shares the learner's.
        learner = _env(ROLE_ENV["learner"])
        models = {
            role: _env(var) or learner or default_model_spec(role) for role, var in ROLE_ENV.items()
        }
        configured = any(_env(var) for var in ROLE_ENV.values()) or bool(_env("OPENAI_API_KEY"))
        extra = [p.strip() for p in (_env("SIPDO_SERVE_MODELS") or "").split(",") if p.strip()]
        sandbox = _env("SIPDO_SANDBOX") or "auto"
        if sandbox not in SANDBOX_KINDS:
            raise ConfigurationError(
                f"SIPDO_SANDBOX={sandbox!r}; expected one of {', '.join(SANDBOX_KINDS)}"
            )
        pool = _env("SIPDO_SANDBOX_POOL")
        if pool is not None and (not pool.isdigit() or int(pool) < 1):
            raise ConfigurationError(f"SIPDO_SANDBOX_POOL={pool!r}; expected an int >= 1")
        return cls(
            sandbox_pool=int(pool) if pool else None,
            models=models,
            configured=configured,
            allowed_models=tuple(dict.fromkeys([*models.values(), *extra])),
            sandbox=sandbox,
            domain=_env("SIPDO_DOMAIN") or "code",
            strategy=_env("SIPDO_STRATEGY") or DEFAULT_STRATEGY,
        )

    def model_for(self, role: str, config: ServeConfig) -> str:
        """The spec ``role`` uses under ``config``; ``ConfigurationError`` if not allowed."""
        spec = getattr(config, ROLE_FIELDS[role]) or config.model
        if spec is None:
            return self.models[role]
        spec = spec.strip()
        if not any(fnmatchcase(spec, pattern) for pattern in self.allowed_models):
            raise ConfigurationError(
                f"model {spec!r} ({ROLE_FIELDS[role]}) is not allowed on this server; "
                f"allowed: {', '.join(self.allowed_models)} (set SIPDO_SERVE_MODELS to add more)"
            )
        return spec
