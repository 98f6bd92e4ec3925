"""Grade stored held-out answers again under today's grading rules; no model call.

A run store keeps every held-out answer ``benchmarks/improvement.py`` and
``sipdo eval`` graded, with the verdict of the rules of the day. When the
rules change (stop 31: a candidate's own validation beyond the tests' range is
no longer a wrong answer, ``sipdo.verifiers.domain``), this says what every
stored eval scores now, and how each graded prompt compares with the initial
prompt of its store, then and now:

    python benchmarks/regrade.py /work/runs/s27/gepa15.db /work/runs/s30/gepa4.db
    python benchmarks/regrade.py runs/*.db --model 1.5b --off   # the old rules too

An eval is listed once per distinct (model, prompt version), so candidates graded
in several stores count once. The initial prompt's eval is the store's eval with no
source version over the same tasks.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sipdo.evaluation.benchmarks import load_benchmark
from sipdo.sandbox.process import ProcessSandbox
from sipdo.verifiers import CodeTask, VerifierConfig, verify_solution


@dataclass
class Eval:
    store: str
    eval_id: str
    version: str | None
    model: str
    answers: dict[str, str] = field(default_factory=dict)  # task id -> answer
    stored: dict[str, bool] = field(default_factory=dict)  # task id -> full_passed then


def read_store(path: Path) -> list[Eval]:
    """Every eval of the store at ``path`` (SQLite) with its answers."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        runs = con.execute("select eval_id, source_version, model from sipdo_eval_runs").fetchall()
        out = []
        for eval_id, version, model in runs:
            e = Eval(str(path), eval_id, version, model or "")
            rows = con.execute(
                "select task_id, answer, full_passed from sipdo_eval_results "
                "where eval_id = ? and sample = 0",
                (eval_id,),
            )
            for task_id, answer, passed in rows:
                e.answers[task_id] = answer or ""
                e.stored[task_id] = bool(passed)
            if e.answers:
                out.append(e)
        return out
    finally:
        con.close()


class Grader:
    """``verify_solution`` once per distinct (task, answer, rules)."""

    def __init__(self, tasks: dict[str, CodeTask]) -> None:
        self.tasks = tasks
        self.sandbox = ProcessSandbox(max_concurrency=2)
        self.cache: dict[tuple[str, str, bool], bool] = {}

    def passed(self, task_id: str, answer: str, declared_domain: bool) -> bool:
        key = (task_id, answer, declared_domain)
        if key not in self.cache:
            config = VerifierConfig(declared_domain=declared_domain)
            verdict = verify_solution(
                self.tasks[task_id], answer, sandbox=self.sandbox, config=config
            )
            self.cache[key] = verdict.passed
        return self.cache[key]

    def close(self) -> None:
        self.sandbox.close()


def _initial(evals: Iterable[Eval], e: Eval) -> Eval | None:
    same_tasks = [
        x
        for x in evals
        if x.store == e.store and x.version is None and x.answers.keys() >= e.answers.keys()
    ]
    return same_tasks[0] if same_tasks else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+", type=Path, help="SQLite run stores")
    parser.add_argument("--model", default="", help="only evals whose model contains this")
    parser.add_argument("--off", action="store_true", help="also grade with the rule off")
    args = parser.parse_args(argv)
    tasks = {t.id: t for t in load_benchmark("humaneval")}
    evals = [e for path in args.stores for e in read_store(path)]
    grader = Grader(tasks)
    try:
        seen: set[tuple[str, str | None, frozenset[str]]] = set()
        print("| store | prompt | tasks | stored | now | stored vs initial | now vs initial |")
        print("|---|---|---|---|---|---|---|")
        for e in evals:
            if e.version is None or args.model not in e.model:
                continue
            init = _initial(evals, e)
            key = (e.model, e.version, frozenset(e.answers))
            if init is None or key in seen:
                continue
            seen.add(key)
            ids = sorted(e.answers)
            now = sum(grader.passed(t, e.answers[t], True) for t in ids)
            init_now = sum(grader.passed(t, init.answers[t], True) for t in ids)
            then = sum(e.stored[t] for t in ids)
            init_then = sum(init.stored[t] for t in ids)
            n = len(ids)
            row = [
                Path(e.store).stem,
                e.version,
                str(n),
                f"{then}",
                f"{now}",
                f"{then - init_then:+d} ({100 * (then - init_then) / n:+.1f} pts)",
                f"{now - init_now:+d} ({100 * (now - init_now) / n:+.1f} pts)",
            ]
            if args.off:
                off = sum(grader.passed(t, e.answers[t], False) for t in ids)
                row[4] += f" (rule off: {off})"
            print("| " + " | ".join(row) + " |", flush=True)
        inits = {(e.model, frozenset(e.answers)): e for e in evals if e.version is None}
        for init in inits.values():
            if args.model not in init.model and init.model:
                continue
            ids = sorted(init.answers)
            now = sum(grader.passed(t, init.answers[t], True) for t in ids)
            print(
                f"initial prompt, {Path(init.store).stem} ({init.model or 'samples'}): "
                f"{sum(init.stored.values())}/{len(ids)} stored, {now}/{len(ids)} now"
            )
    finally:
        grader.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
