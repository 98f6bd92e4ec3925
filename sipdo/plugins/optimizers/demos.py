"""Verified demonstrations: few-shot examples every one of which the sandbox proved.

DSPy's ``BootstrapFewShot`` keeps the traces on which a program's answer met
the metric. Here the pool holds (task, answer) pairs where the task is a
verified training task (a seed or a generated task the verifier accepted) and
the learner's answer passed the sandbox verification. A candidate carries the
ids of some of them in its ``demonstrations`` component; the solver sees each
as an earlier user/assistant exchange before its task (never the one for the
task it is solving), and the promotion policy decides on the candidate like on
any instruction edit.

Bounds: at most ``limit`` demonstrations (3 by default) and ``token_budget``
estimated tokens between them. Hygiene (``refusals``): every id must be in the
pool, its task verified, and not among the held-out tasks — a demonstration
drawn from the held-out set would let the held-out score measure memory.
All pure.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sipdo.errors import ConfigurationError
from sipdo.verifiers.types import content_id

DEFAULT_LIMIT = 3
DEFAULT_TOKEN_BUDGET = 1500
CHARS_PER_TOKEN = 4  # a rough, tokenizer-free estimate; enough for a budget
REPLY_CHARS = 4000  # a longer reply is not kept (and would not fit a budget anyway)

Demonstration = Mapping[str, Any]  # see ``sipdo.graph.state.DemonstrationState``


@dataclass(frozen=True)
class DemoSettings:
    """How many demonstrations a candidate may carry, and their token budget.

    ``limit=0`` turns the component off: no pool is kept and no strategy proposes one.
    """

    limit: int = 0
    token_budget: int = DEFAULT_TOKEN_BUDGET

    def __post_init__(self) -> None:
        if not 0 <= self.limit <= 16:
            raise ConfigurationError(f"demonstrations must be 0..16, got {self.limit!r}")
        if self.token_budget < 1:
            raise ConfigurationError(
                f"demonstration token budget must be >= 1, got {self.token_budget!r}"
            )

    @property
    def enabled(self) -> bool:
        return self.limit > 0


def estimate_tokens(*texts: str) -> int:
    return math.ceil(sum(len(t) for t in texts) / CHARS_PER_TOKEN)


def demonstration(
    task: Mapping[str, Any], answer: str, reply: str, *, shown: str, source: str
) -> dict[str, Any]:
    """A pool entry: ``task`` answered by ``reply`` (``answer`` parsed from it), verified.

    ``shown`` is the text of the user turn(s) the solver sees for the task (what the
    token estimate counts besides the reply); ``source`` the candidate that answered.
    """
    tid = str(task["id"])
    return {
        "id": content_id(tid, reply, prefix="demo"),
        "task_id": tid,
        "task": dict(task),
        "answer": answer,
        "reply": reply,
        "source": source,
        "tokens": estimate_tokens(shown, reply),
    }


def refusals(
    ids: Sequence[str],
    pool: Mapping[str, Demonstration],
    verified: Collection[str],
    *,
    held_out: Collection[str],
    settings: DemoSettings,
) -> list[str]:
    """Why a candidate's demonstrations cannot be used ([] when they can).

    ``verified`` are the ids of the run's verified training tasks; ``held_out``
    the ids and dedup keys of the held-out tasks (a pool entry's ``key`` is its
    task's dedup key).
    """
    out: list[str] = []
    if len(ids) > settings.limit:
        out.append(f"{len(ids)} demonstrations, more than the {settings.limit} allowed")
    tokens = 0
    tasks: set[str] = set()
    for did in ids:
        demo = pool.get(did)
        if demo is None:
            out.append(f"{did} is not a verified demonstration of this run")
            continue
        tid = str(demo["task_id"])
        if tid in held_out or str(demo.get("key", "")) in held_out:
            out.append(f"{did} shows the held-out task {tid}")
        elif tid not in verified:
            out.append(f"{did} shows {tid}, which is not a verified training task")
        if tid in tasks:
            out.append(f"{did} repeats the task {tid}")
        tasks.add(tid)
        tokens += int(demo.get("tokens", 0))
    if tokens > settings.token_budget:
        out.append(f"{tokens} estimated tokens of demonstrations, over the {settings.token_budget}")
    return out


def eligible(
    pool: Mapping[str, Demonstration],
    verified: Collection[str],
    current: Sequence[str],
    *,
    settings: DemoSettings,
    prefer: Collection[str] = (),
) -> list[str]:
    """Pool ids that could join ``current`` (a new task, within the token budget),
    best first: demonstrations of a weakness in ``prefer``, then the shortest."""
    used = {pool[d]["task_id"] for d in current if d in pool}
    spent = sum(int(pool[d].get("tokens", 0)) for d in current if d in pool)
    found = [
        d
        for d, demo in pool.items()
        if d not in current
        and demo["task_id"] in verified
        and demo["task_id"] not in used
        and spent + int(demo.get("tokens", 0)) <= settings.token_budget
    ]

    def rank(did: str) -> tuple[int, int, str]:
        demo = pool[did]
        weakness = str(demo.get("task", {}).get("weakness", ""))
        return (0 if weakness and weakness in prefer else 1, int(demo.get("tokens", 0)), did)

    return sorted(found, key=rank)


def propose(
    pool: Mapping[str, Demonstration],
    verified: Collection[str],
    current: Sequence[str],
    *,
    settings: DemoSettings,
    prefer: Collection[str] = (),
) -> tuple[list[str], str] | None:
    """The next demonstration set to try from ``current``, and the operator's name.

    Adds one while there is room (in number and tokens), else swaps the oldest
    for a new one, else removes the last one; None when there is nothing to change.
    """
    if not settings.enabled:
        return None
    current = [d for d in current if d in pool]
    if len(current) < settings.limit:
        fresh = eligible(pool, verified, current, settings=settings, prefer=prefer)
        if fresh:
            return [*current, fresh[0]], "add_demonstration"
    if not current:
        return None
    kept = current[1:]
    fresh = [
        d
        for d in eligible(pool, verified, kept, settings=settings, prefer=prefer)
        if d not in current
    ]
    if fresh:
        return [*kept, fresh[0]], "swap_demonstration"
    return current[:-1], "remove_demonstration"
