"""Verification of solutions and of generated tasks, designed against hostile candidates.

Threat model. A candidate (``solution.py``) is arbitrary hostile Python. It is
only ever executed in its own sandbox run whose working directory holds the
candidate and a small call driver: no tests, no reference, no expected
values, no result files anyone trusts. The driver calls the entry point on
inputs read from stdin and writes each outcome (return value, exception type
name, post-call argument values) as plain tagged JSON, converted with
type-exact checks so no method of the candidate's objects ever runs, on a
nonce-framed channel separate from the candidate's own stdout. The host
treats those records purely as the candidate's *claims* about its outputs:
forging the channel, exiting early, patching builtins / pytest / Hypothesis
or the driver can only change which outputs are claimed, and claiming right
outputs requires computing them. An input left unanswered, answered twice,
or answered with an opaque object counts as wrong.

The expected values come from a separate trusted run (reference + tests, no
candidate; ``reference.py``); the comparison happens on the host
(``harness/codec.same``: floats with tolerance, NaN-aware, exceptions by type
name, in-place argument mutations). The task's pytest tests are executed in
a third run that again holds no candidate: the entry point is answered from
the candidate's recorded outputs (record and replay), so frame inspection,
gc scanning, rigged dunders, skip / exit tricks and fake summaries have
nothing to act on. What this rests on, from the sandbox: each run in its
own fresh directory, and (``Sandbox.isolation``) ``host_files_read`` /
``host_files_write``: a backend without them would let a candidate read a
concurrent reference run's directory or alter the interpreter the trusted
runs use, so grade hostile code only on backends that claim both. Only the
entry point is graded; other names the tests import come from the reference.
Inputs are generated in the trusted run (Hypothesis, derandomized with fixed
seeds and ``PYTHONHASHSEED=0``), refined by the arguments the tests pass, and
the differential comparison, not the tests' own assertions, is the authority
for values; tasks with several correct outputs per input need their own
``input_strategy`` or tests that pin the output. Generated inputs stay inside
the task's input contract, inputs the reference itself does not answer are
never compared, and the argument policy says whether arguments after a call
are graded (``contract.py``): a correct answer is not failed for what the task
did not ask.

Public API: ``verify_solution`` / ``averify_solution``, ``verify_task`` /
``averify_task``, ``verify_dataset`` / ``averify_dataset`` (whole files of
tasks or samples), ``CodeTask``, ``Verdict``, ``Check``, ``Verifier`` (protocol),
``CodeVerifier``, ``ConsensusVerifier``, ``VerifierConfig``.
"""

from __future__ import annotations

from sipdo.verifiers.api import (
    CodeVerifier,
    analyze_mutants,
    averify_solution,
    averify_task,
    verify_solution,
    verify_task,
)
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.consensus import ConsensusVerifier, Vote, normalize_answer

# After the names above: the dataset layer is built on them.
from sipdo.verifiers.dataset import averify_dataset, verify_dataset
from sipdo.verifiers.mutation import Mutant, mutants
from sipdo.verifiers.protocol import Verifier
from sipdo.verifiers.task_check import MutantFate
from sipdo.verifiers.types import Check, CodeTask, Verdict, content_id

__all__ = [
    "Check",
    "CodeTask",
    "CodeVerifier",
    "ConsensusVerifier",
    "Mutant",
    "MutantFate",
    "Verdict",
    "Verifier",
    "VerifierConfig",
    "Vote",
    "analyze_mutants",
    "averify_dataset",
    "averify_solution",
    "averify_task",
    "content_id",
    "mutants",
    "normalize_answer",
    "verify_dataset",
    "verify_solution",
    "verify_task",
]
