"""The data the verifiers exchange: ``CodeTask``, ``Verdict``, ``Check``."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


def content_id(*parts: str, prefix: str = "task") -> str:
    """A short stable id from content, so the same task gets the same id everywhere."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:12]
    return f"{prefix}-{digest}"


class CodeTask(BaseModel):
    """A coding task: a signature + docstring, a reference solution and pytest tests.

    ``tests`` is pytest source that does ``from solution import <entry_point>``;
    the candidate (or the reference) is installed as ``solution.py``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = ""
    prompt: str = Field(description="Function signature and docstring shown to solvers.")
    entry_point: str = Field(description="Name of the function under test.")
    reference_solution: str = Field(description="Full module source defining entry_point.")
    tests: str = Field(description="pytest source importing entry_point from solution.")
    difficulty: int = 1
    weakness: str = ""
    provenance: dict[str, Any] = Field(default_factory=dict)
    input_strategy: str = Field(
        default="",
        description=(
            "Optional Python source run in the sandbox with `st` (hypothesis.strategies) in scope; "
            "it must bind `strategy` to a strategy of argument tuples for the differential tests."
        ),
    )
    precondition: str = Field(
        default="",
        description=(
            "Optional input contract: one boolean Python expression over the parameter names, "
            "or source defining `precondition(<parameters>)`. Differential inputs must satisfy "
            "it; empty: inferred from the arguments the tests pass (sipdo.verifiers.contract)."
        ),
    )
    argument_policy: Literal["auto", "free", "frozen", "output"] = Field(
        default="auto",
        description=(
            "Arguments after the call: `free` (not graded), `frozen` (must not change), "
            "`output` (part of the result, e.g. an in-place sort); `auto` reads the prompt "
            "and the reference (sipdo.verifiers.contract.argument_policy)."
        ),
    )

    @model_validator(mode="after")
    def _fill_id(self) -> CodeTask:
        if not self.id:
            object.__setattr__(self, "id", content_id(self.prompt, self.entry_point))
        return self


class Check(BaseModel):
    """One check inside a verdict (tests, differential, mutation, consensus, ...)."""

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    score: float = 0.0
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class Verdict(BaseModel):
    """The outcome of verifying a solution or a task.

    ``feedback`` is short text an optimizer can act on; ``score`` is in 0..1;
    ``counterexample`` is the (shrunk) input that separates candidate and reference.
    """

    model_config = ConfigDict(frozen=True)

    passed: bool
    score: float = Field(ge=0.0, le=1.0)
    feedback: str = ""
    checks: list[Check] = Field(default_factory=list)
    counterexample: str | None = None

    def check(self, name: str) -> Check | None:
        """The check called ``name``, if it ran."""
        return next((c for c in self.checks if c.name == name), None)
