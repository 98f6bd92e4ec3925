"""A scripted world for graph tests: role models whose answers depend on the prompt.

The code they return is real and is graded by the real verifiers in a real
sandbox: a "right" answer is the task's reference solution, a "wrong" answer is
a function that returns None. The learner answers right when its system prompt
holds ``FIX`` (or the task is in ``always``), and everything wrong when it holds
``BREAK``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from typing import Any

from langchain_core.messages import BaseMessage

from sipdo.plugins.domains.code import CodeDomain, render_markdown
from sipdo.testing import ScriptedChatModel
from sipdo.verifiers import VerifierConfig

SEEDS = {t["entry_point"]: t for t in CodeDomain().seed_tasks()}

# Five level-1 seeds. With the learner failing all but ``rotate_left``, a FIX prompt wins
# four seeds, plus every generated task; five wins and no loss is what the default
# (statistical) gate's one-sided sign test needs (p = 1/32 <= 0.05). One or two fixes are a
# coin's worth of evidence and promote nothing there, which is the point of that gate.
LEVEL_ONE = ("rotate_left", "chunk", "run_length_encode", "is_balanced", "second_largest")


def level_one_seeds() -> list[dict[str, Any]]:
    return [dict(SEEDS[name]) for name in LEVEL_ONE]


# The real verifiers with fewer examples and mutants, to keep loop tests to seconds.
FAST = VerifierConfig(n_standard=15, n_extended=20, max_mutants=8, replay_rounds=1)


def domain() -> CodeDomain:
    return CodeDomain(verifier_config=FAST)


def gen_task(
    entry: str, prompt: str, ref: str, tests: str, weakness: str = "edge cases"
) -> dict[str, str]:
    """A generator reply (the ``GeneratedCodeTask`` fields)."""
    return {
        "prompt": textwrap.dedent(prompt).strip(),
        "entry_point": entry,
        "reference_solution": textwrap.dedent(ref).strip() + "\n",
        "tests": textwrap.dedent(tests).strip() + "\n",
        "weakness": weakness,
    }


CLAMP = gen_task(
    "clamp",
    '''
    def clamp(x: int, lo: int, hi: int) -> int:
        """x limited to the closed range [lo, hi] (lo <= hi)."""
    ''',
    """
    def clamp(x: int, lo: int, hi: int) -> int:
        return max(lo, min(x, hi))
    """,
    """
    from solution import clamp

    def test_inside():
        assert clamp(5, 0, 10) == 5

    def test_below_and_above():
        assert clamp(-3, 0, 10) == 0
        assert clamp(11, 0, 10) == 10

    def test_bounds():
        assert clamp(0, 0, 10) == 0
        assert clamp(10, 0, 10) == 10
        assert clamp(4, 4, 4) == 4
    """,
)

DEDUPE = gen_task(
    "dedupe_keep_order",
    '''
    def dedupe_keep_order(xs: list[int]) -> list[int]:
        """xs without repeated values, keeping the first occurrence of each, in order."""
    ''',
    """
    def dedupe_keep_order(xs: list[int]) -> list[int]:
        seen: set[int] = set()
        out: list[int] = []
        for x in xs:
            if x not in seen:
                seen.add(x)
                out.append(x)
        return out
    """,
    """
    from solution import dedupe_keep_order

    def test_order_kept():
        assert dedupe_keep_order([3, 1, 3, 2, 1]) == [3, 1, 2]

    def test_empty_and_single():
        assert dedupe_keep_order([]) == []
        assert dedupe_keep_order([7, 7, 7]) == [7]

    def test_no_repeats():
        assert dedupe_keep_order([1, 2, 3]) == [1, 2, 3]
    """,
    weakness="duplicate handling",
)

# The reference fails its own tests: a verifier must reject this task.
UNSOUND = gen_task(
    "count_vowels",
    '''
    def count_vowels(s: str) -> int:
        """Number of vowels (a, e, i, o, u, either case) in s."""
    ''',
    """
    def count_vowels(s: str) -> int:
        return sum(1 for ch in s if ch in "aeiou")
    """,
    """
    from solution import count_vowels

    def test_upper_case():
        assert count_vowels("AEIOU") == 5

    def test_lower_case():
        assert count_vowels("hello") == 2
    """,
)

GENERATED = {t["entry_point"]: t for t in (CLAMP, DEDUPE, UNSOUND)}


def _text(messages: list[BaseMessage]) -> str:
    return "\n".join(str(m.content) for m in messages)


def entry_point_of(messages: list[BaseMessage]) -> str:
    """The function a solver is asked to write (from the last user message)."""
    found = re.findall(r"def\s+([A-Za-z_]\w*)\s*\(", str(messages[-1].content))
    return found[0] if found else ""


def reference(entry: str) -> str:
    task = SEEDS.get(entry) or GENERATED.get(entry)
    return str(task["reference_solution"]) if task else "def missing():\n    return None\n"


def wrong(entry: str) -> str:
    return f"def {entry}(*args, **kwargs):\n    return None\n"


def fenced(code: str) -> str:
    return f"Here you go:\n```python\n{code}```\n"


def learner_model(always: Iterable[str] = (), *, delay_s: float = 0.0) -> ScriptedChatModel:
    """Right under a ``FIX`` prompt or for ``always`` tasks, wrong under ``BREAK``."""
    always = set(always)

    def respond(messages: list[BaseMessage]) -> str:
        system, entry = str(messages[0].content), entry_point_of(messages)
        if "BREAK" in system:
            return fenced(wrong(entry))
        good = "FIX" in system or entry in always
        return fenced(reference(entry) if good else wrong(entry))

    return ScriptedChatModel(responder=respond, delay_s=delay_s, name="learner")


def checker_model(disagree: Iterable[str] = ()) -> ScriptedChatModel:
    """Solves with the reference (so it agrees), except for ``disagree`` tasks."""
    disagree = set(disagree)

    def respond(messages: list[BaseMessage]) -> str:
        entry = entry_point_of(messages)
        return fenced(wrong(entry) if entry in disagree else reference(entry))

    return ScriptedChatModel(responder=respond, name="checker")


def generator_model(*tasks: dict[str, Any] | str) -> ScriptedChatModel:
    """Replays ``tasks`` (generator replies) in order."""
    return ScriptedChatModel(list(tasks), name="generator")


def optimizer_script(*prompts: str) -> list[Any]:
    """Scripted optimizer replies: one analysis, then (recommendation, refinement) per prompt."""
    script: list[Any] = [
        {"failure_modes": [{"pattern": "returns None", "cause": "no implementation"}]}
    ]
    for prompt in prompts:
        script.append({"recommendations": [f"say: {prompt}"]})
        script.append({"prompt": prompt, "rationale": "targets the failure mode"})
    return script


def optimizer_model(*prompts: str) -> ScriptedChatModel:
    return ScriptedChatModel(optimizer_script(*prompts), name="optimizer")


def markdown(task: dict[str, str]) -> str:
    """A generator reply in the code domain's markdown layout."""
    return render_markdown(task)
