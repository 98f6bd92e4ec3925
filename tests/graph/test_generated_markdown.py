"""The code generator's markdown layout: parsing, clear errors, retries, a loop with it."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipdo.errors import ConfigurationError
from sipdo.graph import Budget, create_sipdo_graph
from sipdo.plugins.domains.code import (
    MARKDOWN_RETRY,
    CodeDomain,
    GeneratedCodeTask,
    parse_generated_markdown,
    render_markdown,
    statement_of,
)
from sipdo.sandbox import Sandbox
from sipdo.structured import ReplyFormat
from sipdo.testing import ScriptedChatModel
from tests.graph import world
from tests.graph.test_loop import run

# A reply as the local 1.5B model writes it: prose after the blocks, bold label.
REPLY = textwrap.dedent(
    '''
    **WEAKNESS:** counting overlapping matches

    ```python
    from typing import List

    def count_overlapping(text: str, pattern: str) -> int:
        """Number of (possibly overlapping) occurrences of a non-empty pattern in text."""
        count = 0
        for i in range(len(text) - len(pattern) + 1):
            if text[i : i + len(pattern)] == pattern:
                count += 1
        return count
    ```

    ```python
    from solution import count_overlapping

    def test_overlap():
        assert count_overlapping("aaaa", "aa") == 3
    ```
    This task checks overlapping matches, which a naive str.count misses.
    '''
)


def test_reads_the_layout_and_takes_the_statement_from_the_docstring() -> None:
    gen = parse_generated_markdown(REPLY)
    assert gen.entry_point == "count_overlapping"
    assert gen.weakness == "counting overlapping matches"
    assert gen.prompt == (  # the unused import stays out of the statement
        "def count_overlapping(text: str, pattern: str) -> int:\n"
        '    """Number of (possibly overlapping) occurrences of a non-empty pattern in text."""\n'
    )
    assert "count += 1" in gen.reference_solution
    assert "count += 1" not in gen.prompt
    assert gen.tests.startswith("from solution import count_overlapping")


def test_statement_keeps_the_imports_its_signature_uses() -> None:
    source = (
        "import re\nfrom typing import List as L, Optional\n\n"
        'def f(xs: L[int]) -> Optional[int]:\n    """First even number."""\n'
        "    return next((x for x in xs if re.match('', '') and x % 2 == 0), None)\n"
    )
    assert statement_of(source, "f") == (
        "from typing import List as L, Optional\n\n"
        'def f(xs: L[int]) -> Optional[int]:\n    """First even number."""\n'
    )


def test_every_seed_round_trips_through_the_layout() -> None:
    for task in CodeDomain().seed_tasks():
        gen = parse_generated_markdown(render_markdown(task))
        assert gen.entry_point == task["entry_point"]
        assert gen.prompt.strip() == task["prompt"].strip()
        assert gen.tests.strip() == task["tests"].strip()


def test_rendering_keeps_helpers_and_survives_a_broken_reference() -> None:
    task = {
        "prompt": 'def f(x: int) -> int:\n    """Twice x."""\n',
        "entry_point": "f",
        "reference_solution": (
            "def _twice(x):\n    return 2 * x\n\ndef f(x):\n    return _twice(x)\n"
        ),
        "tests": "from solution import f\n\ndef test_f():\n    assert f(2) == 4\n",
    }
    gen = parse_generated_markdown(render_markdown(task))
    assert "def _twice" in gen.reference_solution
    assert gen.prompt == task["prompt"]
    broken = {**task, "reference_solution": "def f(x:\n"}
    assert "def f(x:" in render_markdown(broken)


def test_statement_keeps_decorators_and_multiline_signatures() -> None:
    source = textwrap.dedent(
        '''
        import functools

        @functools.cache
        def fib(
            n: int,
        ) -> int:
            """The n-th Fibonacci number, fib(0) == 0.

            Negative n raises ValueError.
            """
            if n < 0:
                raise ValueError(n)
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        '''
    )
    statement = statement_of(source, "fib")
    assert statement.startswith("import functools\n\n@functools.cache\ndef fib(\n")
    assert statement.rstrip().endswith('"""')
    assert "if n < 0" not in statement


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("I cannot think of a task.", "from solution import"),
        ("```python\ndef f(x):\n    return x\n```", "from solution import"),
        (
            "```python\nfrom solution import g\n\ndef test_g():\n    assert g(1) == 1\n```",
            "the tests import g() but no other ```python block defines it",
        ),
        (
            "```python\ndef g(x):\n    return x\n```\n```python\nfrom solution import g\n"
            "def test_g():\n    assert g(1) == 1\n```",
            "has no docstring",
        ),
        (
            '```python\ndef g(x):\n    """x."""\n    return (x\n```\n```python\n'
            "from solution import g\ndef test_g():\n    assert g(1) == 1\n```",
            "does not parse",
        ),
    ],
)
def test_unusable_replies_say_what_is_missing(reply: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_generated_markdown(reply)


def test_a_json_reply_is_still_understood() -> None:
    reply = "Sure:\n```json\n" + json.dumps(world.CLAMP) + "\n```"
    gen = parse_generated_markdown(reply)
    assert gen == GeneratedCodeTask.model_validate(world.CLAMP)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "```python\n",
                "```\n",
                "from solution import f\n",
                "def f(x):\n",
                '    """doc."""\n',
                "    return x\n",
                "WEAKNESS: w\n",
                "{",
                '"tests": 1}',
                "\n",
            ]
        )
        | st.text(max_size=20),
        max_size=14,
    )
)
def test_garbage_gives_a_value_error_or_a_task(parts: list[str]) -> None:
    try:
        gen = parse_generated_markdown("".join(parts))
    except ValueError:
        return
    assert gen.entry_point.isidentifier()


def test_format_choice() -> None:
    markdown = CodeDomain().generated_format()
    assert isinstance(markdown, ReplyFormat)
    assert not markdown.constrained
    assert "WEAKNESS:" in markdown.instruction
    assert markdown.retry == MARKDOWN_RETRY
    as_json = CodeDomain(generator_format="json").generated_format()
    assert as_json.constrained
    assert "JSON schema" in as_json.instruction
    with pytest.raises(ConfigurationError, match="generator_format"):
        CodeDomain(generator_format="yaml")  # type: ignore[arg-type]


async def test_loop_accepts_markdown_tasks_after_a_retry(sandbox: Sandbox) -> None:
    generator = ScriptedChatModel(
        ["Here is a task about clamping.", world.markdown(world.CLAMP)], name="generator"
    )
    graph = create_sipdo_graph(
        world.learner_model(always=["rotate_left"]),
        generator_model=generator,
        checker_model=world.checker_model(),
        strategy="sipdo",  # world.optimizer_model scripts its requests
        optimizer_model=world.optimizer_model("Be precise. FIX"),
        # one refinement: the story is the generator's markdown, not the gate
        budget=Budget(iterations=1, tasks_per_iteration=1, max_refinements=1),
        domain=world.domain(),
        sandbox=sandbox,
    )
    seeds: list[dict[str, Any]] = [dict(world.SEEDS["rotate_left"]), dict(world.SEEDS["chunk"])]
    out, events = await run(graph, {"prompt": "You write Python functions.", "seed_tasks": seeds})

    (task,) = out["accepted_tasks"]
    assert task["entry_point"] == "clamp"
    assert task["prompt"] == world.CLAMP["prompt"] + "\n"
    assert task["weakness"] == world.CLAMP["weakness"]
    first, retry = generator.calls
    assert "WEAKNESS:" in first.text
    assert MARKDOWN_RETRY in retry.text
    assert "from solution import" in retry.text
    ended = [e for e in events if e["event"] == "model_call" and e["phase"] == "end"]
    generator_end = next(e for e in ended if e["role"] == "generator")
    assert generator_end["calls"] == 2
    assert generator_end["ok"] is True
    assert {e["role"] for e in ended} == {"learner", "generator", "checker", "optimizer"}


def test_the_last_consistent_pair_wins_over_a_repeated_old_task() -> None:
    old_tests = (
        "```python\nfrom solution import run_length_encode\n\n"
        "def test_e():\n    assert run_length_encode('') == []\n```\n"
    )
    reply = REPLY + "\nAnd the tests of the failed task again:\n" + old_tests
    gen = parse_generated_markdown(reply)
    assert gen.entry_point == "count_overlapping"
    assert "count_overlapping" in gen.tests


async def test_unusable_replies_are_kept_with_the_rejection(sandbox: Sandbox) -> None:
    junk = ["no task, sorry", "still nothing", "```python\nprint('hi')\n```"]
    graph = create_sipdo_graph(
        world.learner_model(),
        generator_model=ScriptedChatModel(junk, name="generator"),
        checker_model=world.checker_model(),
        strategy="sipdo",  # world.optimizer_model scripts its requests
        optimizer_model=ScriptedChatModel(
            [*world.optimizer_script()[:1], {"recommendations": ["r"]}, "a", "b", "<prompt>\n"]
            + ["no\nrule"] * 3,  # and the one-rule fallback fails too
            name="optimizer",
        ),
        budget=Budget(iterations=1, tasks_per_iteration=1, max_refinements=1),
        domain=world.domain(),
        sandbox=sandbox,
    )
    seeds: list[dict[str, Any]] = [dict(world.SEEDS["chunk"])]
    out, events = await run(graph, {"prompt": "You write Python functions.", "seed_tasks": seeds})

    (said,) = [e for e in events if e["event"] == "no_candidate"]  # shown, not silent
    assert said["reason"].startswith("refinement unusable: the <prompt> block is empty")
    (rejected,) = out["rejected_tasks"]
    assert rejected["reason"].startswith("generator output unusable: no ```python block")
    assert rejected["raw_reply"] == junk[-1]
    (attempt,) = [h for h in out["history"] if h["kind"] == "prompt_attempt"]
    assert attempt["reason"].startswith(
        "refinement unusable: the <prompt> block is empty; no rule to append either:"
    )
    assert attempt["notes"]["raw_reply"] == "no\nrule"
    assert attempt["notes"]["analysis"]["failure_modes"]  # kept for the next refinement


async def test_a_failed_refinement_keeps_the_analysis_for_the_next(sandbox: Sandbox) -> None:
    analysis, rec, refined = world.optimizer_script("Be precise. FIX")
    unusable = ["x", "y", "z", "no\nrule", "no\nrule", "no\nrule"]  # no prompt, no rule
    optimizer = ScriptedChatModel([analysis, rec, *unusable, rec, refined], name="optimizer")
    graph = create_sipdo_graph(
        world.learner_model(),
        generator_model=ScriptedChatModel(["nothing"] * 3, name="generator"),
        checker_model=world.checker_model(),
        strategy="sipdo",  # world.optimizer_model scripts its requests
        optimizer_model=optimizer,
        budget=Budget(iterations=1, tasks_per_iteration=1, max_refinements=2),
        domain=world.domain(),
        sandbox=sandbox,
    )
    seeds = world.level_one_seeds()  # five fixes: what the default gate needs to promote
    out, _ = await run(graph, {"prompt": "You write Python functions.", "seed_tasks": seeds})

    assert out["best_prompt"] == "Be precise. FIX"
    steps = [call.text for call in optimizer.calls]
    assert sum("Step 1" in text for text in steps) == 1
    assert len(steps) == 10  # analysis, rec, 3 prompt tries, 3 rule tries; rec, prompt
