"""``sipdo run``'s model limits (``--model-timeout``, ``--model-retry-for``) and what it
prints when a run stops on a fault outside it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.engine import make_url

from sipdo.errors import ConfigurationError, RunStoppedError, StoreError
from sipdo.plugins.models.resolve import ROLE_ENV, resolve_model
from sipdo.retry import RetryPolicy
from sipdo.store import RunStore, default_url

ALL_ROLES = "*"


def parse_model_timeouts(values: Iterable[str]) -> dict[str, float] | None:
    """``["60", "learner=20"]`` -> ``{"*": 60.0, "learner": 20.0}`` (None when empty)."""
    out: dict[str, float] = {}
    for value in values:
        role, sep, seconds = value.rpartition("=")
        role = role.strip() if sep else ALL_ROLES
        if role != ALL_ROLES and role not in ROLE_ENV:
            raise ConfigurationError(
                f"--model-timeout {value!r}: unknown role {role!r}; roles: {', '.join(ROLE_ENV)}"
            )
        try:
            number = float(seconds)
        except ValueError as exc:
            raise ConfigurationError(
                f"--model-timeout {value!r}: expected [ROLE=]SECONDS, e.g. 120 or learner=30"
            ) from exc
        if not number > 0:
            raise ConfigurationError(f"--model-timeout {value!r}: seconds must be positive")
        out[role] = number
    return out or None


def with_limits(
    specs: Mapping[str, Any],
    roles: Mapping[str, str],
    timeouts: Mapping[str, float] | None,
    retry_for: float | None,
) -> dict[str, Any]:
    """``specs`` (option -> spec or model) with every server-backed spec resolved under its
    role's timeout and the retry limit; local and given models are left as they are.

    A role left open shares the learner's spec but still gets its own timeout; roles
    with the same spec and limits share one model."""
    if not timeouts and retry_for is None:
        return dict(specs)
    retry = RetryPolicy(retry_for_s=retry_for) if retry_for is not None else None
    learner = next(iter(specs.values()))
    made: dict[tuple[str, float | None], Any] = {}
    out: dict[str, Any] = {}
    for option, spec in specs.items():
        role = roles[option]
        if spec is None and isinstance(learner, str):
            spec = learner
        local = isinstance(spec, str) and (spec.startswith("local:") or spec.endswith(".gguf"))
        if not isinstance(spec, str) or local:
            out[option] = spec
            continue
        timeout = (timeouts or {}).get(role, (timeouts or {}).get(ALL_ROLES))
        if (spec, timeout) not in made:
            made[spec, timeout] = resolve_model(spec, role=role, timeout_s=timeout, retry=retry)
        out[option] = made[spec, timeout]
    return out


def resume_command(run_id: str, url: str) -> str:
    """The command that continues ``run_id`` (``--db`` named unless it is the default)."""
    command = f"sipdo run --resume {run_id}"
    if url == default_url():
        return command
    parsed = make_url(url)
    shown = "<the same --db URL>" if parsed.password else url
    return f"{command} --db '{shown}'"


def stopped(store: RunStore, run_id: str, prompt: str, exc: Exception) -> RunStoppedError:
    """The error that ends a run on ``exc`` (one of ``STOPPING``), the run marked
    ``stopped`` when the store still answers."""
    command = resume_command(run_id, store.url)
    with contextlib.suppress(StoreError):  # if the store is what failed: shown as interrupted
        store.finish_run(run_id, "stopped", prompt, f"stopped: {exc}")
    return RunStoppedError(
        f"run {run_id} stopped: {exc}\n"
        "Everything up to its last finished step is kept. Once that is fixed, continue with:\n"
        f"  {command}",
        run_id=run_id,
        resume_command=command,
    )
