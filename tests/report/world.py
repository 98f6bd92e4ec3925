"""A hostile scripted world for the report tests: the CLI story, with markup everywhere.

The story of ``tests.cli.scriptworld`` (clamp, then dedupe; one candidate
rejected by the no-regression gate) run for three iterations, with model-written
text that tries to inject script into the report: the prompts the optimizer
writes, its rationale, the weakness labels and task statements the generator
writes, and a third-iteration task whose reference fails its own tests with a
hostile assertion message (so the verifier's reason carries it too). Everything
else — the sandbox, the verifiers, the store, the CLI — is real.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli import scriptworld as story
from tests.graph import world

# Each sets window.__pwned if the browser ever runs it.
HOSTILE = (
    "</script><script>window.__pwned='script'</script>"
    "<img src=x onerror=\"window.__pwned='img'\">"
    '"><svg onload="window.__pwned=\'svg\'"></svg>'
)
PROMPT = story.PROMPT + "\nIgnore markup like " + HOSTILE
PROMPT_1 = PROMPT + "\nRULE-CLAMP: clamp values into the closed range. " + HOSTILE
PROMPT_BAD = PROMPT_1 + "\nBREAK everything."
PROMPT_2 = PROMPT_1 + "\nRULE-DEDUPE: keep the first occurrence of each value."

CLAMP = {**story.CLAMP, "weakness": "range bounds " + HOSTILE}
CLAMP["prompt"] = CLAMP["prompt"].replace("(lo <= hi).", "(lo <= hi). " + HOSTILE)
DEDUPE = {**story.DEDUPE, "weakness": "duplicate handling"}
BROKEN = world.gen_task(
    "halve",
    '''
    def halve(n: int) -> int:
        """n halved, rounded down."""
    ''',
    """
    def halve(n: int) -> int:
        return n // 3
    """,
    f"""
    from solution import halve

    def test_halve():
        assert halve(8) == 4, {HOSTILE!r}
    """,
    weakness="integer division " + HOSTILE,
)


def _rule(match: list[str], response: Any) -> dict[str, Any]:
    return {"match": match, "response": response}


def _rules(role: str) -> list[dict[str, Any]]:
    if role == "learner":
        return story.learner_rules()
    if role == "checker":
        halve = story.fenced("def halve(n):\n    return n // 2\n")
        return [_rule(["def halve("], halve), *story.checker_rules()]
    if role == "generator":
        # Each iteration's request names the functions already used; a task sent back
        # as a repeat comes back unchanged.
        return [
            _rule(["Your last task repeated `clamp`"], CLAMP),
            _rule(["Your last task repeated `dedupe_keep_order`"], DEDUPE),
            _rule(["Your last task repeated `halve`"], BROKEN),
            _rule(["dedupe_keep_order"], BROKEN),
            _rule(["clamp"], DEDUPE),
            _rule([], CLAMP),
        ]
    analysis = {"failure_modes": [{"pattern": "returns None", "cause": HOSTILE}]}
    rationale = "adds the missing rule " + HOSTILE
    return [
        _rule(["Step 1, error analysis"], analysis),
        _rule(["Step 2"], {"recommendations": ["state the missing rule " + HOSTILE]}),
        _rule(
            ["Step 3", "RULE-CLAMP", "were rejected"], {"prompt": PROMPT_2, "rationale": rationale}
        ),
        _rule(["Step 3", "RULE-CLAMP"], {"prompt": PROMPT_BAD, "rationale": rationale}),
        _rule(["Step 3"], {"prompt": PROMPT_1, "rationale": rationale}),
    ]


def run_args(directory: Path, db: str, run_id: str) -> list[str]:
    """Write the role scripts into ``directory``; the ``sipdo run`` arguments of the story."""
    directory.mkdir(parents=True, exist_ok=True)
    models: dict[str, str] = {}
    for role in ("learner", "generator", "checker", "optimizer"):
        path = directory / f"{role}.json"
        path.write_text(json.dumps({"rules": _rules(role)}))
        models[role] = f"scripted:{path}"
    seeds = directory / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(t) + "\n" for t in story.SEEDS))
    return [
        "run",
        "--prompt",
        PROMPT,
        "--seeds",
        str(seeds),
        "--model",
        models["learner"],
        "--generator-model",
        models["generator"],
        "--checker-model",
        models["checker"],
        "--optimizer-model",
        models["optimizer"],
        "--iterations",
        "3",
        "--sandbox",
        "process",
        # One new task per iteration: a paired test (the default gate) rightly cannot tell
        # one fix from noise (p = 0.5); this story is the paper's strict gate, and the
        # optimizer's script answers the sipdo strategy's three requests.
        "--gate",
        "strict",
        "--strategy",
        "sipdo",
        "--db",
        db,
        "--run-id",
        run_id,
    ]
