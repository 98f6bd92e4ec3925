"""The score table (candidates x tasks) and what strategies and policies read from it.

A cell is ``{"passed", "passes", "n", "score", "feedback"?, "answer"?}`` (see
``sipdo.graph.state.ScoreCell``). Comparisons use ``value(cell)``, the share of
the ``n`` samples that passed: a verdict's partial ``score`` (some checks passed)
says how close an answer came, not whether it is right. All pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sipdo.answers import answer_text

Cell = Mapping[str, Any]
Table = Mapping[str, Mapping[str, Cell]]

FEEDBACK_CHARS = 800
ANSWER_CHARS = 1500


def cell_of(verdict: Mapping[str, Any], answer: Any) -> dict[str, Any]:
    """One sample's cell from a verdict; failing cells keep a short trace (a structured
    answer as it is when its text is short, else its text cut short)."""
    passed = bool(verdict.get("passed"))
    cell: dict[str, Any] = {
        "passed": passed,
        "passes": int(passed),
        "n": 1,
        "score": float(verdict.get("score", 1.0 if passed else 0.0)),
    }
    if not passed:
        cell["feedback"] = str(verdict.get("feedback", ""))[:FEEDBACK_CHARS]
        text = answer_text(answer)
        short = not isinstance(answer, str) and len(text) <= ANSWER_CHARS
        cell["answer"] = answer if short else text[:ANSWER_CHARS]
    return cell


def combine(old: Cell | None, new: Cell) -> dict[str, Any]:
    """Two cells of the same candidate and task as one: mean score over all samples;
    passed only if every sample passed; the latest failing trace is kept."""
    if old is None:
        return dict(new)
    n = int(old["n"]) + int(new["n"])
    score = (float(old["score"]) * int(old["n"]) + float(new["score"]) * int(new["n"])) / n
    out: dict[str, Any] = {"passed": bool(old["passed"]) and bool(new["passed"])}
    out |= {"passes": int(old["passes"]) + int(new["passes"]), "n": n, "score": round(score, 6)}
    trace = new if not new["passed"] else old
    for key in ("feedback", "answer"):
        if key in trace:
            out[key] = trace[key]
    return out


def value(cell: Cell | None) -> float:
    """The share of samples that passed (0.0 for a missing cell)."""
    if not cell:
        return 0.0
    return int(cell["passes"]) / max(1, int(cell["n"]))


def row(table: Table, cid: str, task_ids: Iterable[str] | None = None) -> dict[str, Cell]:
    """A candidate's cells, optionally only on ``task_ids`` (missing ones left out)."""
    cells = table.get(cid, {})
    if task_ids is None:
        return dict(cells)
    return {tid: cells[tid] for tid in task_ids if tid in cells}


def missing(table: Table, cid: str, task_ids: Iterable[str], samples: int = 1) -> list[str]:
    """Tasks on which ``cid`` has fewer than ``samples`` samples."""
    cells = table.get(cid, {})
    return [t for t in task_ids if t not in cells or int(cells[t]["n"]) < samples]


def mean_score(table: Table, cid: str, task_ids: Sequence[str]) -> float:
    """Mean ``value`` over ``task_ids`` (a missing cell counts 0); 0.0 for no tasks."""
    if not task_ids:
        return 0.0
    cells = table.get(cid, {})
    return sum(value(cells.get(t)) for t in task_ids) / len(task_ids)


def dominates(table: Table, a: str, b: str, task_ids: Sequence[str]) -> bool:
    """``a`` is at least as good as ``b`` on every task and better on one."""
    ra, rb = table.get(a, {}), table.get(b, {})
    better = False
    for t in task_ids:
        sa, sb = value(ra.get(t)), value(rb.get(t))
        if sa < sb:
            return False
        better = better or sa > sb
    return better


def best_per_task(
    table: Table, cids: Sequence[str], task_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Task id -> the candidates with the highest score on it (ties kept; tasks that no
    candidate scores above 0 are left out: they say nothing about who is better)."""
    out: dict[str, list[str]] = {}
    for t in task_ids:
        scores = {c: value(table.get(c, {}).get(t)) for c in cids}
        top = max(scores.values(), default=0.0)
        if top > 0:
            out[t] = [c for c in cids if scores[c] == top]
    return out


def pareto_front(table: Table, cids: Sequence[str], task_ids: Sequence[str]) -> list[str]:
    """GEPA's front: candidates best on at least one task, without those dominated by
    another candidate on the tasks considered (order of ``cids`` kept)."""
    winners = {c for best in best_per_task(table, cids, task_ids).values() for c in best}
    front = [c for c in cids if c in winners]
    return [c for c in front if not any(dominates(table, o, c, task_ids) for o in front if o != c)]


def paired(
    table: Table, cand: str, inc: str, task_ids: Iterable[str]
) -> tuple[list[str], list[str], list[str]]:
    """(wins, losses, ties) of ``cand`` against ``inc`` on tasks both were scored on."""
    rc, ri = table.get(cand, {}), table.get(inc, {})
    wins: list[str] = []
    losses: list[str] = []
    ties: list[str] = []
    for t in task_ids:
        if t not in rc or t not in ri:
            continue
        diff = value(rc[t]) - value(ri[t])
        (wins if diff > 0 else losses if diff < 0 else ties).append(t)
    return wins, losses, ties
