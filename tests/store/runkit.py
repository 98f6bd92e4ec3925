"""A small but complete recorded run, written through the public RunStore API.

Shape: seed task ``add`` (learner fails under v0, passes under v1), generated
task ``rev`` accepted at difficulty 2 (fails under v0 and v1, the rejected
candidate v2 does not fix it), task ``bad`` rejected. Prompt v0 -> v1 accepted,
v0 -> v2 rejected (regressed ``add``).
"""

from __future__ import annotations

from typing import Any

from sipdo.store import BaseRunStore

V0 = "You write Python functions.\nReturn only code.\n"
V1 = "You write Python functions.\nHandle empty inputs first.\nReturn only code.\n"
V2 = "You write Python.\nReturn only code.\n"

ADD = {
    "id": "add",
    "prompt": "def add(a: int, b: int) -> int:\n    '''Sum of a and b.'''\n",
    "entry_point": "add",
    "reference_solution": "def add(a, b):\n    return a + b\n",
    "tests": "from solution import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
}
REV = {
    "id": "rev",
    "prompt": "def rev(s: str) -> str:\n    '''s reversed; empty stays empty.'''\n",
    "entry_point": "rev",
    "reference_solution": "def rev(s):\n    return s[::-1]\n",
    "tests": "from solution import rev\n\ndef test_rev():\n    assert rev('ab') == 'ba'\n",
}
BAD = {
    "id": "bad",
    "prompt": "def bad(x):\n    '''Ambiguous.'''\n",
    "entry_point": "bad",
    "reference_solution": "def bad(x):\n    return x\n",
    "tests": "from solution import bad\n\ndef test_bad():\n    assert bad(1) == 2\n",
}

WRONG_ADD = "def add(a, b):\n    return a - b\n"
RIGHT_ADD = "def add(a, b):\n    return a + b\n"
WRONG_REV = "def rev(s):\n    return s\n"


def verdict(passed: bool, feedback: str) -> dict[str, Any]:
    return {"passed": passed, "score": 1.0 if passed else 0.0, "feedback": feedback}


def populate(store: BaseRunStore, run_id: str = "run-1") -> None:
    """Record the run described in the module docstring (idempotent, like the graph)."""
    store.create_run(run_id, {"domain": "code", "iterations": 2}, V0)
    store.record_prompt_version(run_id, "v0", V0, None, True, {"score": 0.0}, "initial", 0)
    store.record_task(run_id, ADD, "seed", "seed task", None, 1, "")
    store.record_attempt(run_id, "add", "v0", "learner", WRONG_ADD, False, 0.0, "add(1,2) gave -1")
    store.record_task(
        run_id, BAD, "rejected", "reference fails its tests", verdict(False, "x"), 2, "off-by-one"
    )
    store.record_attempt(
        run_id,
        "rev",
        "v0",
        "checker",
        "def rev(s):\n    return s[::-1]\n",
        True,
        1.0,
        "agrees with the reference",
    )
    store.record_task(run_id, REV, "accepted", "sound", verdict(True, "ok"), 2, "empty input")
    store.record_attempt(
        run_id, "rev", "v0", "learner", WRONG_REV, False, 0.0, "rev('ab') returned 'ab'"
    )
    store.record_prompt_version(
        run_id, "v2", V2, "v0", False, {"score": 0.0}, "regressed: breaks add", 1
    )
    store.record_attempt(run_id, "rev", "v2", "learner", WRONG_REV, False, 0.0, "still 'ab'")
    store.record_prompt_version(run_id, "v1", V1, "v0", True, {"score": 0.5}, "fixes add", 1)
    store.record_attempt(run_id, "add", "v1", "learner", RIGHT_ADD, True, 1.0, "all tests pass")
    store.record_attempt(run_id, "rev", "v1", "learner", WRONG_REV, False, 0.0, "still 'ab'")
    store.record_usage(run_id, "learner", "scripted", 1, 100, 20, 0.5, call_id="c1")
    store.record_usage(run_id, "learner", "scripted", 1, 110, 25, 0.25, call_id="c2")
    store.record_usage(run_id, "generator", "scripted", 2, 300, 400, 1.0, call_id="c3")
    store.finish_run(run_id, "completed", V1, "iterations")


def snapshot(store: BaseRunStore, run_id: str) -> dict[str, Any]:
    """Everything readable about a run except timestamps, for equality checks."""
    run = store.get_run(run_id)
    return {
        "run": (
            run.status,
            run.config,
            run.initial_prompt,
            run.best_prompt,
            run.stop_reason,
            run.prompt_versions,
            run.accepted_tasks,
            run.rejected_tasks,
            run.best_score,
        ),
        "lineage": [
            (
                p.version_id,
                p.parent_id,
                p.text,
                p.diff,
                p.accepted,
                p.scores,
                p.feedback,
                p.iteration,
            )
            for p in store.prompt_lineage(run_id)
        ],
        "tasks": [
            (
                t.task_id,
                t.task,
                t.status,
                t.reason,
                t.difficulty,
                t.weakness,
                [(v.status, v.reason, v.verdict) for v in t.verdicts],
                t.first_failed_version,
                t.first_solved_version,
            )
            for t in store.tasks(run_id)
        ],
        "attempts": [
            (a.task_id, a.prompt_version_id, a.role, a.answer, a.passed, a.score, a.feedback)
            for a in store.attempts(run_id)
        ],
        "usage": store.usage(run_id),
    }
