"""Model scripts (JSON rule files) that drive a real ``sipdo run`` through a full loop.

Each role gets its own ``scripted:`` file of rules (see ``sipdo.cli.scripted``);
answers depend only on the messages, so a resumed process answers the
repeated calls exactly like the killed one. The story, with ``--iterations 2``:

- seeds (one shipped code seed): the learner solves it under any prompt
  without ``BREAK``;
- iteration 1: both generator calls return ``clamp``; the second, sent
  back once as a repeat, repeats it again and is rejected as a duplicate;
  the checker agrees, the verifier accepts; the learner fails ``clamp``
  until the prompt holds ``RULE-CLAMP``; the optimizer adds it -> accepted;
- iteration 2: ``dedupe_keep_order`` likewise; the first refined
  prompt holds ``BREAK`` (the learner then fails everything: rejected by the
  no-regression gate), the second adds ``RULE-DEDUPE`` -> accepted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sipdo.plugins.domains.code import CodeDomain
from tests.graph import world

PROMPT = "You are a careful Python programmer. Reply with code only."
SEEDS = CodeDomain().seed_tasks()[:1]


# The generated tasks of the graph tests' world, with the weakness labels this story shows.
CLAMP = {**world.CLAMP, "weakness": "range bounds"}
DEDUPE = {**world.DEDUPE, "weakness": "duplicate handling"}

PROMPT_1 = PROMPT + "\nRULE-CLAMP: clamp values into the closed range."
PROMPT_BAD = PROMPT_1 + "\nBREAK everything."
PROMPT_2 = PROMPT_1 + "\nRULE-DEDUPE: keep the first occurrence of each value."

REFERENCE = {t["entry_point"]: t["reference_solution"] for t in [*SEEDS, CLAMP, DEDUPE]}
FIXED_BY = {"clamp": "RULE-CLAMP", "dedupe_keep_order": "RULE-DEDUPE"}


def fenced(code: str) -> str:
    return f"Here you go:\n```python\n{code}```\n"


def wrong(entry: str) -> str:
    return f"def {entry}(*args, **kwargs):\n    return None\n"


def rule(match: list[str], response: Any) -> dict[str, Any]:
    return {"match": match, "response": response}


def learner_rules() -> list[dict[str, Any]]:
    rules = [rule(["BREAK", f"def {e}("], fenced(wrong(e))) for e in REFERENCE]
    for entry, token in FIXED_BY.items():
        rules.append(rule([token, f"def {entry}("], fenced(REFERENCE[entry])))
        rules.append(rule([f"def {entry}("], fenced(wrong(entry))))
    rules += [rule([f"def {t['entry_point']}("], fenced(t["reference_solution"])) for t in SEEDS]
    return rules


def checker_rules() -> list[dict[str, Any]]:
    return [rule([f"def {e}("], fenced(code)) for e, code in REFERENCE.items()]


def generator_rules() -> list[dict[str, Any]]:
    # Iteration 2's request lists `clamp` among the names not to reuse. A task sent back
    # as a repeat comes back unchanged.
    return [
        rule(["Your last task repeated `clamp`"], CLAMP),
        rule(["Your last task repeated `dedupe_keep_order`"], DEDUPE),
        rule(["clamp"], DEDUPE),
        rule([], CLAMP),
    ]


def optimizer_rules() -> list[dict[str, Any]]:
    analysis = {"failure_modes": [{"pattern": "returns None", "cause": "no implementation"}]}
    return [
        rule(["Step 1, error analysis"], analysis),
        rule(["Step 2"], {"recommendations": ["state the missing rule explicitly"]}),
        rule(["Step 3", "RULE-CLAMP", "were rejected"], {"prompt": PROMPT_2, "rationale": "r"}),
        rule(["Step 3", "RULE-CLAMP"], {"prompt": PROMPT_BAD, "rationale": "r"}),
        rule(["Step 3"], {"prompt": PROMPT_1, "rationale": "r"}),
    ]


def write_world(directory: Path, *, delay_s: float = 0.0) -> dict[str, Path]:
    """Write the four role scripts and the seed file; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for role, rules in (
        ("learner", learner_rules()),
        ("generator", generator_rules()),
        ("checker", checker_rules()),
        ("optimizer", optimizer_rules()),
    ):
        paths[role] = directory / f"{role}.json"
        paths[role].write_text(json.dumps({"delay_s": delay_s, "rules": rules}))
    paths["seeds"] = directory / "seeds.jsonl"
    paths["seeds"].write_text("".join(json.dumps(t) + "\n" for t in SEEDS))
    return paths


def run_args(paths: dict[str, Path], db: str, *extra: str) -> list[str]:
    """``sipdo run`` arguments for the world in ``paths``."""
    return [
        "run",
        "--prompt",
        PROMPT,
        "--seeds",
        str(paths["seeds"]),
        "--model",
        f"scripted:{paths['learner']}",
        "--generator-model",
        f"scripted:{paths['generator']}",
        "--checker-model",
        f"scripted:{paths['checker']}",
        "--optimizer-model",
        f"scripted:{paths['optimizer']}",
        "--iterations",
        "2",
        "--sandbox",
        "process",
        # One new task per iteration: a paired test (the default gate) rightly cannot tell
        # one fix from noise (p = 0.5); this story is the paper's strict gate, and its
        # optimizer script answers the sipdo strategy's three requests.
        "--gate",
        "strict",
        "--strategy",
        "sipdo",
        "--db",
        db,
        *extra,
    ]
