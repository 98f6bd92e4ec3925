"""Knobs of the code verifiers, with defaults that keep a verification to seconds."""

from __future__ import annotations

from dataclasses import dataclass

from sipdo.errors import ConfigurationError


@dataclass(frozen=True)
class VerifierConfig:
    """Budgets and thresholds for ``verify_solution`` / ``verify_task``.

    Candidate time limits are calibrated from the reference's measured time:
    each call gets ``max(call_floor_s, time_factor * reference call time)``
    and the whole candidate run ``run_floor_s + time_factor * reference total``
    (plus a per-call allowance), so a slow machine does not fail a correct
    candidate while an infinite loop still fails.

    A generated input on which the reference runs out ``reference_call_budget_s``
    is outside the task's domain. After ``reference_full_timeouts`` of them (one:
    a reference that loops on one generated input usually loops on others, and a
    second whole budget cost HumanEval/32, /39 and /63 2 s each), the
    reference gets ``max(reference_short_budget_s, 20 x its slowest answered
    call)`` (at most the full budget) on the remaining generated inputs; the
    tests' own calls always get the full budget.

    ``n_standard`` inputs (edge cases, Hypothesis examples and variants of the
    tests' own calls) grade every candidate; ``n_extended`` more tell
    equivalent mutants from surviving ones in ``verify_task``. With both at 0
    the task's tests alone decide, as a plain test harness would: on the
    tests' own calls the candidate's answers are still compared with the
    reference's. ``live_tests`` then grades a task whose tests are a plain
    module in one sandbox run instead of two (``sipdo.verifiers.live``).

    ``declared_domain``: a generated input beyond the range of the tests' own
    calls, which the candidate rejects with its own ``raise`` or ``assert``, is
    not compared (a stated precondition the answer checks and the reference
    does not; ``sipdo.verifiers.domain``). Off, every generated input is compared.
    """

    n_standard: int = 60
    n_extended: int = 150
    reference_call_budget_s: float = 2.0
    reference_full_timeouts: int = 1
    reference_short_budget_s: float = 0.25
    reference_timeout_s: float = 180.0
    time_factor: float = 20.0
    call_floor_s: float = 1.0
    run_floor_s: float = 10.0
    mutation_threshold: float = 0.8
    max_mutants: int = 40
    mutant_call_floor_s: float = 0.25
    replay_rounds: int = 3
    shrink_rounds: int = 2
    tests_file: str = "test_task.py"
    live_tests: bool = True
    declared_domain: bool = True

    def __post_init__(self) -> None:
        counts = ("n_standard", "n_extended", "max_mutants", "replay_rounds", "shrink_rounds")
        for name in (*counts, "reference_full_timeouts"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"VerifierConfig.{name} must be >= 0")
        if not 0.0 <= self.mutation_threshold <= 1.0:
            raise ConfigurationError("VerifierConfig.mutation_threshold must be within 0..1")
        if (
            min(
                self.time_factor,
                self.call_floor_s,
                self.run_floor_s,
                self.reference_call_budget_s,
                self.reference_short_budget_s,
            )
            <= 0
        ):
            raise ConfigurationError("VerifierConfig time budgets must be positive")
        if self.tests_file in ("solution.py",) or not self.tests_file.endswith(".py"):
            raise ConfigurationError(
                "VerifierConfig.tests_file must be a .py name other than solution.py"
            )
