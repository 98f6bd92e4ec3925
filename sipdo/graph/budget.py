"""Run budgets and the JSON-safe record of what a run has used."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.structured import CallStats

Cap = int | Mapping[str, int] | None


def _check_cap(name: str, cap: Cap) -> None:
    values = cap.values() if isinstance(cap, Mapping) else [] if cap is None else [cap]
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigurationError(f"Budget.{name} must be a non-negative int, got {value!r}")


@dataclass(frozen=True)
class Budget:
    """Limits of one run; ``None`` means unlimited.

    ``model_calls`` and ``tokens`` (input + output, from ``usage_metadata``) take
    either one int, a cap on the total over all roles, or a mapping role -> int,
    a cap per role (roles: ``learner``, ``generator``, ``checker``, ``optimizer``).
    Budgets are checked between graph steps, so one step may overshoot a little;
    the run then stops with ``stop_reason`` ``"budget:<name>"``.
    """

    iterations: int = 3
    model_calls: Cap = None
    tokens: Cap = None
    sandbox_seconds: float | None = None
    max_refinements: int = 3
    tasks_per_iteration: int = 2

    def __post_init__(self) -> None:
        for name in ("iterations", "max_refinements", "tasks_per_iteration"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(f"Budget.{name} must be an int >= 1, got {value!r}")
        _check_cap("model_calls", self.model_calls)
        _check_cap("tokens", self.tokens)
        seconds = self.sandbox_seconds
        if seconds is not None and (isinstance(seconds, bool) or not seconds >= 0):
            raise ConfigurationError(f"Budget.sandbox_seconds must be >= 0, got {seconds!r}")

    def limits(self) -> dict[str, Any]:
        """JSON-safe view for events and the run store."""
        out = asdict(self)
        for key in ("model_calls", "tokens"):
            if isinstance(out[key], Mapping):
                out[key] = dict(out[key])
        return out

    def exceeded(self, used: Mapping[str, Any]) -> str | None:
        """``"budget:<name>"`` for the first budget spent, else None."""
        calls = dict(used.get("model_calls", {}))
        tokens = {
            role: used.get("input_tokens", {}).get(role, 0)
            + used.get("output_tokens", {}).get(role, 0)
            for role in set(used.get("input_tokens", {})) | set(used.get("output_tokens", {}))
        }
        for name, cap, spent in (
            ("model_calls", self.model_calls, calls),
            ("tokens", self.tokens, tokens),
        ):
            if cap is None:
                continue
            if isinstance(cap, Mapping):
                if any(spent.get(role, 0) >= limit for role, limit in cap.items()):
                    return f"budget:{name}"
            elif sum(spent.values()) >= cap:
                return f"budget:{name}"
        if (
            self.sandbox_seconds is not None
            and used.get("sandbox_seconds", 0.0) >= self.sandbox_seconds
        ):
            return "budget:sandbox_seconds"
        return None


def estimate_calls(
    budget: Budget,
    *,
    n_seeds: int,
    per_step: Callable[[int, int], Mapping[str, int]],
    demonstrations: int = 0,
) -> dict[str, int]:
    """Model calls per role a run under ``budget`` makes at most, roughly: every
    generated task accepted, every refinement used, ``per_step(n_tasks, n_failures)``
    calls per optimizer step (the strategy's ``estimate_calls``), half the tasks
    failing, one sample per evaluation and no reply retries (nor a repeated task's
    second chance). With ``demonstrations`` on, a step may evaluate one more
    candidate (the incumbent with its demonstrations changed) on every task:
    ``n_tasks`` more learner calls. Caps in ``budget`` stop a run earlier; the
    estimate says what the shape of the run allows."""
    calls = {"learner": n_seeds, "generator": 0, "checker": 0, "optimizer": 0}
    n_tasks = n_seeds
    for _ in range(budget.iterations):
        k = budget.tasks_per_iteration
        for role in ("generator", "checker", "learner"):
            calls[role] += k
        n_tasks += k
        for _ in range(budget.max_refinements):
            for role, count in per_step(n_tasks, max(1, n_tasks // 2)).items():
                calls[role] = calls.get(role, 0) + int(count)
            if demonstrations:
                calls["learner"] += n_tasks
    return calls


def empty_usage() -> dict[str, Any]:
    """A fresh ``budget_used`` record."""
    return {
        "model_calls": {},
        "input_tokens": {},
        "output_tokens": {},
        "latency_s": {},
        "sandbox_seconds": 0.0,
    }


def usage_delta(per_role: Mapping[str, CallStats], sandbox_seconds: float = 0.0) -> dict[str, Any]:
    """What one node used, as a ``budget_used`` delta (the state reducer adds deltas)."""
    return add_usage(empty_usage(), per_role, sandbox_seconds)


def left(budget: Budget, used: Mapping[str, Any]) -> dict[str, int | None]:
    """Model calls left per role under ``budget`` (None: unlimited), for strategies."""
    calls = dict(used.get("model_calls", {}))
    total = sum(calls.values())
    out: dict[str, int | None] = {}
    for role in ("learner", "generator", "checker", "optimizer"):
        cap = budget.model_calls
        if cap is None:
            out[role] = None
        elif isinstance(cap, Mapping):
            out[role] = None if role not in cap else max(0, cap[role] - calls.get(role, 0))
        else:
            out[role] = max(0, cap - total)
    return out


def add_usage(
    used: Mapping[str, Any], per_role: Mapping[str, CallStats], sandbox_seconds: float = 0.0
) -> dict[str, Any]:
    """A new ``budget_used`` with ``per_role`` stats and sandbox time added (pure)."""
    out: dict[str, Any] = {
        key: dict(value) if isinstance(value, Mapping) else value for key, value in used.items()
    }
    for key, value in empty_usage().items():
        out.setdefault(key, value)
    for role, stats in per_role.items():
        for key, amount in (
            ("model_calls", stats.calls),
            ("input_tokens", stats.input_tokens),
            ("output_tokens", stats.output_tokens),
            ("latency_s", round(stats.latency_s, 4)),
        ):
            out[key][role] = out[key].get(role, 0) + amount
    out["sandbox_seconds"] = round(float(out["sandbox_seconds"]) + sandbox_seconds, 4)
    return out
