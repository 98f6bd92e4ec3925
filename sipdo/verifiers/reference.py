"""The trusted reference run: the task's tests on the reference, generated inputs, expected outputs.

The run never contains a candidate. Its result (``ReferenceRun``) holds every
input a candidate will be called on, grouped as ``test`` (arguments the tests
passed), ``std`` (edge cases + Hypothesis examples) and ``ext`` (a wider
set used by ``verify_task`` to tell equivalent mutants from surviving ones),
each with the reference's record (result, post-call arguments, seconds).
Generated inputs lie inside the task's input contract and the reference
answers them (``contract.py``); the run also says which argument policy
grades the task.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sipdo.verifiers import unicode_tables
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.contract import ArgumentPolicy, argument_policy
from sipdo.verifiers.harness import bytecode, codec, files
from sipdo.verifiers.runs import Flow, RunOutput, RunRequest, parse
from sipdo.verifiers.signature import signature
from sipdo.verifiers.types import CodeTask


@dataclass(frozen=True)
class Case:
    """One input and the reference's record for it."""

    group: str
    inp: dict[str, Any]
    expected: dict[str, Any]

    @property
    def key(self) -> str:
        return codec.key(self.inp)

    @property
    def size(self) -> int:
        return codec.size(self.inp)

    def call_text(self, entry: str) -> str:
        """The call as Python-like text, e.g. ``f([1, 2], k=3)``."""
        parts = [codec.render(a, 200) for a in self.inp.get("args", [])]
        parts += [f"{k}={codec.render(v, 200)}" for k, v in self.inp.get("kwargs", {}).items()]
        return f"{entry}({', '.join(parts)})"


@dataclass(frozen=True)
class ReferenceRun:
    """What the reference did: test outcomes, cases, dropped inputs."""

    tests: dict[str, tuple[str, str]]
    exit_code: int
    cases: list[Case]
    dropped: dict[str, int] = field(default_factory=dict)
    unencodable_calls: int = 0
    stderr: str = ""
    complete: bool = True
    ending: str = ""
    contract: dict[str, Any] = field(default_factory=dict)
    policy: ArgumentPolicy = "output"

    def group(self, *names: str) -> list[Case]:
        return [c for c in self.cases if c.group in names]

    @property
    def failing_tests(self) -> dict[str, str]:
        return {t: msg for t, (o, msg) in self.tests.items() if o == "failed"}

    def fingerprint(self) -> str:
        """Everything observable, for the determinism check (timings excluded)."""
        tests = sorted((t, o) for t, (o, _) in self.tests.items())
        cases = [
            (c.group, c.key, codec.key(c.expected["r"]), codec.key(c.expected.get("post")))
            for c in self.cases
        ]
        return codec.key([tests, cases, self.exit_code])


def reference_request(task: CodeTask, config: VerifierConfig) -> RunRequest:
    """The run request for the reference side of ``task``."""
    sig = signature(task.reference_solution, task.entry_point)
    request = {
        "entry": task.entry_point,
        "tests_file": config.tests_file,
        "params": list(sig.params),
        "specs": list(sig.specs),
        "strategy_source": task.input_strategy or None,
        "precondition": task.precondition.strip() or None,
        "n_standard": config.n_standard,
        "n_extended": config.n_extended,
        "call_budget": config.reference_call_budget_s,
        "full_timeouts": config.reference_full_timeouts,
        "short_budget": config.reference_short_budget_s,
    }
    run_files: dict[str, str | bytes] = {
        **files("codec", "call_driver", "gen", "contract", "plain", "reference_driver"),
        **bytecode("codec", "call_driver", "gen", "contract", "plain"),
        # A run that draws text finds Hypothesis's tables built.
        **unicode_tables.files_for(
            task.tests, generates=bool(config.n_standard or config.n_extended)
        ),
        "solution.py": task.reference_solution,
        config.tests_file: task.tests,
    }
    return RunRequest(run_files, "_sipdo_reference.py", request, config.reference_timeout_s)


def read_reference(out: RunOutput) -> ReferenceRun:
    """Assemble a ``ReferenceRun`` from the driver's records."""
    tests: dict[str, tuple[str, str]] = {}
    cases: list[Case] = []
    exit_code, dropped, unencodable = -1, {}, 0
    contract: dict[str, Any] = {}
    for rec in out.records:
        if "test" in rec:
            if tests.get(rec["test"], ("", ""))[0] != "failed":
                tests[rec["test"]] = (rec["o"], rec.get("msg", ""))
        elif "exit" in rec:
            exit_code, unencodable = rec["exit"], rec.get("unencodable_calls", 0)
        elif "g" in rec:
            cases.append(
                Case(
                    rec["g"],
                    rec["in"],
                    {"r": rec["r"], "post": rec["post"], "dt": rec.get("dt", 0.0)},
                )
            )
        elif "dropped" in rec:
            dropped = rec["dropped"]
        elif isinstance(rec.get("contract"), dict):
            contract = rec["contract"]
    stderr = out.result.stderr[-2000:]
    return ReferenceRun(
        tests, exit_code, cases, dropped, unencodable, stderr, out.done, out.ending(), contract
    )


def reference_flow(
    task: CodeTask, config: VerifierConfig, copies: int = 1
) -> Flow[list[ReferenceRun]]:
    """Run the reference side ``copies`` times in one batch (``complete``: did each finish)."""
    reqs = [reference_request(task, config) for _ in range(copies)]
    results = yield reqs
    runs = [read_reference(parse(req, res)) for req, res in zip(reqs, results, strict=True)]
    return [
        replace(run, policy=argument_policy(task, [(c.inp, c.expected) for c in run.group("test")]))
        for run in runs
    ]


def agrees(answer: dict[str, Any] | None, case: Case, policy: ArgumentPolicy) -> bool:
    """The candidate's ``answer`` to ``case`` agrees with the reference under ``policy``."""
    return answer is not None and codec.same_result(answer, case.expected, policy, case.inp)
