"""Run requests and readers for untrusted code (candidate run) and for test replay.

Candidate run: ``solution.py`` (the untrusted code) + the call driver, nothing
else: no tests, no reference, no expected values. What comes back is read as
the candidate's *claims* about its outputs; each case must be answered
exactly once, or the run counts as tampered.

Replay run: the tests + the reference module, with the entry point answered
from tables of recorded outputs (see ``harness/replay_driver.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sipdo.verifiers import unicode_tables
from sipdo.verifiers.config import VerifierConfig
from sipdo.verifiers.harness import bytecode, codec, files
from sipdo.verifiers.reference import Case
from sipdo.verifiers.runs import RunOutput, RunRequest
from sipdo.verifiers.types import CodeTask


@dataclass(frozen=True)
class CallRun:
    """Per-module answers of one call-driver run, keyed by case key."""

    results: list[dict[str, dict[str, Any]]]
    import_errors: list[str | None]
    tampered: bool
    ending: str


def budgets(cases: list[Case], config: VerifierConfig, floor: float | None = None) -> list[float]:
    """Per-call time budgets, calibrated from the reference's own call times."""
    low = config.call_floor_s if floor is None else floor
    return [max(low, config.time_factor * float(c.expected.get("dt", 0.0))) for c in cases]


def call_request(
    modules: dict[str, str],
    entry: str,
    cases: list[Case],
    config: VerifierConfig,
    *,
    floor: float | None = None,
    expected: bool = False,
    stop_from: int | None = None,
    policy: str = "output",
) -> RunRequest:
    """Call every module (file name -> source) on every case, in size order."""
    per_call = budgets(cases, config, floor)
    request: dict[str, Any] = {
        "entry": entry,
        "modules": [name.removesuffix(".py") for name in modules],
        "inputs": [c.inp for c in cases],
        "budgets": per_call,
    }
    if expected:
        request |= {
            "expected": [c.expected for c in cases],
            "stop_from": stop_from or 0,
            "policy": policy,
        }
    ref_total = sum(float(c.expected.get("dt", 0.0)) for c in cases)
    timeout = len(modules) * (
        config.run_floor_s + config.time_factor * ref_total + 0.02 * len(cases)
    )
    run_files: dict[str, str | bytes] = {
        **files("codec", "call_driver"),
        **bytecode("codec"),
        **modules,
    }
    return RunRequest(run_files, "_sipdo_call.py", request, timeout)


def read_calls(req: RunRequest, out: RunOutput, cases: list[Case]) -> CallRun:
    """Map records back to cases; a second answer for a case marks the run tampered."""
    n_mod = len(req.request["modules"])
    results: list[dict[str, dict[str, Any]]] = [{} for _ in range(n_mod)]
    errors: list[str | None] = [None] * n_mod
    tampered = False
    for rec in out.records:
        m = rec.get("m")
        if not isinstance(m, int) or not 0 <= m < n_mod:
            continue
        if "import" in rec:
            errors[m] = str(rec["import"])
            continue
        i = rec.get("i")
        if not isinstance(i, int) or not 0 <= i < len(cases) or not isinstance(rec.get("r"), dict):
            continue
        key = cases[i].key
        if key in results[m]:
            tampered = True
        results[m][key] = {"r": rec["r"], "post": rec.get("post", []), "dt": rec.get("dt", 0.0)}
    return CallRun(results, errors, tampered, out.ending())


def candidate_request(
    candidate: str, entry: str, cases: list[Case], config: VerifierConfig
) -> RunRequest:
    """The untrusted run: ``solution.py`` and the call driver only."""
    return call_request({"solution.py": candidate}, entry, cases, config)


@dataclass(frozen=True)
class ReplayRun:
    """Per-table test outcomes and the inputs the tests asked for but no table had."""

    outcomes: list[dict[str, tuple[str, str]]]
    misses: list[list[dict[str, Any]]] = field(default_factory=list)
    collect_errors: dict[str, str] = field(default_factory=dict)


def replay_request(
    task: CodeTask, tables: list[dict[str, Any]], config: VerifierConfig
) -> RunRequest:
    """The trusted replay run: the tests answered from ``tables``."""
    request = {"entry": task.entry_point, "tests_file": config.tests_file, "tables": tables}
    run_files: dict[str, str | bytes] = {
        **files("codec", "replay_driver"),
        **bytecode("codec"),
        **unicode_tables.files_for(task.tests, generates=False),  # tests that draw text
        "solution.py": task.reference_solution,
        config.tests_file: task.tests,
    }
    timeout = config.run_floor_s * 3 + 2.0 * len(tables)
    return RunRequest(run_files, "_sipdo_replay.py", request, timeout)


def read_replay(out: RunOutput, n_tables: int) -> ReplayRun:
    """Outcomes per table; a test reported twice keeps its worst outcome."""
    outcomes: list[dict[str, tuple[str, str]]] = [{} for _ in range(n_tables)]
    misses: list[list[dict[str, Any]]] = [[] for _ in range(n_tables)]
    seen_miss: list[set[str]] = [set() for _ in range(n_tables)]
    errors: dict[str, str] = {}
    for rec in out.records:
        t = rec.get("t")
        if t == -1:
            errors[str(rec.get("test"))] = str(rec.get("msg", ""))
        elif isinstance(t, int) and 0 <= t < n_tables:
            if "miss" in rec and codec.key(rec["miss"]) not in seen_miss[t]:
                seen_miss[t].add(codec.key(rec["miss"]))
                misses[t].append(rec["miss"])
            elif "test" in rec and outcomes[t].get(rec["test"], ("",))[0] != "failed":
                outcomes[t][rec["test"]] = (str(rec["o"]), str(rec.get("msg", "")))
    return ReplayRun(outcomes, misses, errors)


def describe(record: dict[str, Any] | None) -> str:
    """A call record as short text: the value, the exception, or what went wrong."""
    if record is None:
        return "no answer"
    r = record.get("r", {})
    if "ok" in r:
        return codec.render(r["ok"], 200)
    if "raise" in r:
        return f"raised {r['raise']}"
    return "timed out" if "timeout" in r else "no answer"
