"""How many candidates each promotion policy promotes, on the evidence of recorded runs.

For every candidate a policy decided on in the given runs, prints what each
shipped gate (``strict``, ``statistical``, ``pareto``) decides on the same score
table, whether the specificity veto keeps it back, and a per-gate total. Runs
recorded since decisions carry their counterfactuals are read as recorded; older
runs are replayed from the stored score table (one sample a cell, the tasks both
the candidate and its parent were graded on).

    .venv/bin/python benchmarks/gates.py RUN_ID... [--db URL]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from sipdo.plugins.optimizers.candidates import INSTRUCTIONS, specificity_flags
from sipdo.plugins.optimizers.gates import GATES
from sipdo.store import RunStore, default_url


def replay(store: RunStore, run_id: str) -> list[dict[str, Any]]:
    """One row per decided candidate: its id, the run's policy and every gate's verdict."""
    table = {
        vid: {t: {**c, "n": 1, "passes": int(bool(c["passed"]))} for t, c in row.items()}
        for vid, row in store.score_table(run_id).items()
    }
    lineage = store.prompt_lineage(run_id)
    everyone = [v.version_id for v in lineage]
    known = [t.task for t in store.tasks(run_id) if t.status in ("seed", "accepted")]
    rows: list[dict[str, Any]] = []
    for version in lineage[1:]:
        decision = version.meta.get("decision") or {}
        if not decision or decision.get("reason") == "not selected by the strategy":
            continue
        parent = version.parent_ids[0] if version.parent_ids else everyone[0]
        tasks = [t for t in table.get(parent, {}) if t in table.get(version.version_id, {})]
        verdicts: dict[str, bool | None] = {}
        recorded = decision.get("others") or {}
        for name, make in GATES.items():
            if name == decision.get("policy"):
                verdicts[name] = bool(version.accepted or decision.get("vetoed"))
            elif name in recorded:
                verdicts[name] = recorded[name]["promoted"]
            else:
                got = make().decide(table, version.version_id, parent, tasks, others=everyone)
                verdicts[name] = bool(got["promoted"])
        rows.append(
            {
                "run": run_id,
                "candidate": version.version_id,
                "policy": decision.get("policy", "?"),
                "tasks": len(tasks),
                "flags": len(version.meta.get("flags", [])),
                # the flagger of today on the same text (older runs had a weaker one)
                "flags_now": len(
                    specificity_flags(version.components.get(INSTRUCTIONS, version.text), known)
                ),
                "promoted": version.accepted,
                **verdicts,
            }
        )
    return rows


def render(rows: Sequence[dict[str, Any]]) -> str:
    def mark(v: bool | None) -> str:
        return "-" if v is None else ("yes" if v else "no")

    head = f"{'run':<16} {'candidate':<16} {'policy':<11} tasks flags now promoted"
    head += "".join(f" {g:>11}" for g in GATES)
    lines = [head]
    for r in rows:
        line = f"{r['run']:<16} {r['candidate']:<16} {r['policy']:<11} {r['tasks']:>5} "
        line += f"{r['flags']:>5} {r['flags_now']:>3} {mark(r['promoted']):>8}"
        line += "".join(f" {mark(r[g]):>11}" for g in GATES)
        lines.append(line)
    totals = {g: sum(1 for r in rows if r[g]) for g in GATES}
    lines.append(
        f"{len(rows)} candidates decided; promoted by "
        + ", ".join(f"{g}: {n}" for g, n in totals.items())
        + f"; flagged as task-specific: {sum(1 for r in rows if r['flags'])} when decided, "
        + f"{sum(1 for r in rows if r['flags_now'])} by today's flagger"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="RUN_ID")
    parser.add_argument("--db", default=None, help="store URL (default: ~/.sipdo/runs.db)")
    args = parser.parse_args(argv)
    with RunStore(args.db or default_url()) as store:
        rows = [row for run in args.runs for row in replay(store, run)]
    print(render(rows))


if __name__ == "__main__":
    main()
