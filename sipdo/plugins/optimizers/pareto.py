"""GEPA's selection logic over the score table: per-task fronts, pruning, merges. Pure.

- ``task_fronts``: for each task, the pool candidates with the highest score on
  it (tasks nobody passes are left out: they say nothing about who is better).
- ``remove_dominated``: a candidate is dominated when every front it is on also
  holds another surviving candidate; the weakest (by aggregate score) go first,
  one at a time, as in GEPA's ``remove_dominated_programs``.
- ``sampling_weights``: how many tasks each surviving candidate is best on;
  parents are drawn in proportion to it.
- ``find_merge``: two front candidates that are not each other's ancestors and
  share an ancestor no better than either, where some component was changed by
  exactly one of them; ``merge_components`` takes, per component, the version
  that changed (both changed: the one from the higher-scoring parent).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from sipdo.plugins.optimizers.scores import Table, value

Fronts = dict[str, list[str]]


def task_fronts(table: Table, pool: Sequence[str], task_ids: Sequence[str]) -> Fronts:
    """Task id -> the pool candidates with the top score on it (ties kept, pool order)."""
    fronts: Fronts = {}
    for t in task_ids:
        scores = {c: value(table.get(c, {}).get(t)) for c in pool}
        top = max(scores.values(), default=0.0)
        if top > 0:
            fronts[t] = [c for c in pool if scores[c] == top]
    return fronts


def _dominated(cid: str, others: set[str], fronts: Fronts) -> bool:
    return all(any(o in others for o in front) for front in fronts.values() if cid in front)


def remove_dominated(fronts: Fronts, agg: Mapping[str, float]) -> tuple[Fronts, list[str]]:
    """(fronts without dominated candidates, the removed ones in removal order)."""
    members = list(dict.fromkeys(c for front in fronts.values() for c in front))
    members.sort(key=lambda c: agg.get(c, 0.0))  # stable: the weakest are tried first
    removed: list[str] = []
    changed = True
    while changed:
        changed = False
        for c in members:
            if c in removed:
                continue
            others = set(members) - set(removed) - {c}
            if _dominated(c, others, fronts):
                removed.append(c)
                changed = True
                break
    kept = {t: [c for c in front if c not in removed] for t, front in fronts.items()}
    return kept, removed


def sampling_weights(fronts: Fronts) -> dict[str, int]:
    """Candidate -> the number of tasks it is best on (after pruning)."""
    weights: dict[str, int] = {}
    for front in fronts.values():
        for c in front:
            weights[c] = weights.get(c, 0) + 1
    return weights


def sample_parent(weights: Mapping[str, int], rng: random.Random) -> str:
    """A parent drawn with probability proportional to its weight."""
    ids = list(weights)
    return rng.choices(ids, weights=[weights[c] for c in ids], k=1)[0]


def ancestors(cid: str, candidates: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Every candidate ``cid`` descends from (through all parents)."""
    found: set[str] = set()
    todo = list(candidates.get(cid, {}).get("parent_ids", []))
    while todo:
        pid = todo.pop()
        if pid in found or pid not in candidates:
            continue
        found.add(pid)
        todo.extend(candidates[pid].get("parent_ids", []))
    return found


def desirable(anc: Mapping[str, str], a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Some component was changed by exactly one of ``a`` and ``b``."""
    return any(
        (anc.get(k) == a.get(k) or anc.get(k) == b.get(k)) and a.get(k) != b.get(k) for k in anc
    )


def merge_components(
    anc: Mapping[str, str],
    a: Mapping[str, str],
    b: Mapping[str, str],
    agg_a: float,
    agg_b: float,
    rng: random.Random,
) -> tuple[dict[str, str], dict[str, str]]:
    """(merged components, component -> "a" | "b": where each was taken from)."""
    merged: dict[str, str] = {}
    source: dict[str, str] = {}
    for k in dict.fromkeys([*anc, *a, *b]):
        va, vb, vanc = a.get(k, ""), b.get(k, ""), anc.get(k, "")
        if va == vb:
            pick = "a"
        elif vanc == va:
            pick = "b"  # only b changed it: take b's change
        elif vanc == vb:
            pick = "a"
        else:  # both changed it: the better-scoring parent's version
            pick = "a" if agg_a > agg_b else "b" if agg_b > agg_a else rng.choice(["a", "b"])
        merged[k] = va if pick == "a" else vb
        source[k] = pick
    return merged, source


def find_merge(
    front: Sequence[str],
    candidates: Mapping[str, Mapping[str, Any]],
    agg: Mapping[str, float],
    performed: Sequence[Sequence[str]],
    rng: random.Random,
    attempts: int = 10,
) -> tuple[str, str, str] | None:
    """(a, b, common ancestor) to merge, or None (see the module docstring)."""
    pool = sorted(front)
    done = {tuple(p) for p in performed}
    for _ in range(attempts):
        if len(pool) < 2:
            return None
        a, b = sorted(rng.sample(pool, 2))
        anc_a, anc_b = ancestors(a, candidates), ancestors(b, candidates)
        if a in anc_b or b in anc_a:
            continue
        comps = {c: dict(candidates[c].get("components", {})) for c in (a, b)}
        common = [
            c
            for c in sorted(anc_a & anc_b)
            if (a, b, c) not in done
            and agg.get(c, 0.0) <= min(agg.get(a, 0.0), agg.get(b, 0.0))
            and desirable(dict(candidates[c].get("components", {})), comps[a], comps[b])
        ]
        if common:
            weights = [agg.get(c, 0.0) + 1e-6 for c in common]
            return a, b, rng.choices(common, weights=weights, k=1)[0]
    return None


def merge_subsample(
    table: Table, a: str, b: str, task_ids: Sequence[str], n: int, rng: random.Random
) -> list[str]:
    """Up to ``n`` tasks, balanced between where ``a`` wins, where ``b`` wins and ties."""
    common = [t for t in task_ids if t in table.get(a, {}) and t in table.get(b, {})]
    va = {t: value(table[a][t]) for t in common}
    vb = {t: value(table[b][t]) for t in common}
    buckets = (
        [t for t in common if va[t] > vb[t]],
        [t for t in common if vb[t] > va[t]],
        [t for t in common if va[t] == vb[t]],
    )
    each = max(1, math.ceil(n / 3))
    chosen: list[str] = []
    for bucket in buckets:
        take = min(len(bucket), each, n - len(chosen))
        if take > 0:
            chosen += rng.sample(bucket, take)
    rest = [t for t in common if t not in chosen]
    chosen += rng.sample(rest, min(len(rest), n - len(chosen)))
    return sorted(chosen, key=task_ids.index)
