"""What the code domain says to the models: the system prompts, the generator's
markdown layout and its retry line, and the generator's and solver's requests."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

Task = dict[str, Any]

GENERATOR_SYSTEM = (
    "You write new Python coding tasks that expose a specific weakness of a solver. "
    "Each task is one function: a signature with a precise docstring, a correct reference "
    "solution, and pytest tests that import the function with `from solution import NAME` "
    "and pin down the tricky cases. Tasks must be unambiguous and self-contained."
)

DEFAULT_PROMPT = (
    "You are a careful Python programmer. Write a complete, correct implementation of the "
    "requested function that handles every case its docstring describes. Reply with code only."
)

CHECKER_PROMPT = (
    "You are an independent checker. Solve the task exactly as its specification says, "
    "handling every edge case it mentions. Answer with working code only."
)

MARKDOWN_LAYOUT = """

Reply in exactly this layout, nothing else:

WEAKNESS: <the weakness this task targets, one short line>
PRECONDITION: <one Python boolean expression over the parameters that every valid input \
satisfies, e.g. len(xs) == len(ys) and n > 1; True if every input is valid>

```python
def function_name(arg: type) -> type:
    \"\"\"Precise statement of the behaviour, including every edge case.\"\"\"
    <correct reference implementation>
```

```python
from solution import function_name

def test_<case>():
    assert function_name(...) == ...
```"""

MARKDOWN_RETRY = (
    "Reply again in the layout: a WEAKNESS line, one ```python block with the function "
    "(docstring included) and one ```python block of pytest tests that import it from solution."
)


def solve_messages(task: Mapping[str, Any], system_prompt: str) -> list[BaseMessage]:
    """The solver's request: the statement, and the module asked for in one block."""
    return [
        SystemMessage(content=system_prompt),
        HumanMessage(
            content="Implement this Python function. Reply with the complete module in one "
            f"```python block.\n\n{task['prompt']}"
        ),
    ]


def generate_messages(
    *,
    target: Mapping[str, Any] | None,
    difficulty: int,
    max_difficulty: int,
    examples: Sequence[Task],
    rejections: Sequence[str] = (),
    render: Callable[[Task], str] | None = None,
) -> list[BaseMessage]:
    """The generator's request: a new task on ``target``'s weakness (or a harder one when
    nothing failed), the names in use, the verifier's recent rejections and, when
    ``render`` is given (the markdown layout), one finished example task."""
    if target is None:
        aim = "The solver solved everything so far: write a harder task on a new edge case."
    else:
        task = target.get("task") or {}
        old_name = str(task.get("entry_point") or "the failed function")
        weakness = str(task.get("weakness") or "") or "the failure below"
        feedback = str((target.get("verdict") or {}).get("feedback", ""))[:600]
        aim = (
            f"The solver failed a task on this weakness: {weakness}.\n"
            f"What went wrong in `{old_name}`: {feedback}\n\n"
            f"Write a NEW task: a different function (not `{old_name}`) that tests the "
            "same weakness in another setting."
        )
    known = ", ".join(sorted({str(t.get("entry_point")) for t in examples})[:30])
    if rejections:
        aim += "\n\nRecent tasks were rejected by the verifier; avoid these problems:\n"
        aim += "\n".join(f"- {r[:300]}" for r in rejections)
    shown = ""
    if render is not None:
        avoid = str((target or {}).get("task", {}).get("entry_point", ""))
        example = next((t for t in examples if t.get("entry_point") != avoid), None)
        if example is not None:
            shown = (
                "\n\nA finished task in the reply layout, for a different weakness "
                f"(do not copy it):\n\n{render(example)}"
            )
    return [
        SystemMessage(content=GENERATOR_SYSTEM),
        HumanMessage(
            content=f"{aim}\n\nDifficulty: {difficulty} on a 1-{max_difficulty} scale "
            f"(one above the last accepted level). Do not reuse these function names: "
            f"{known or '(none)'}. Name the weakness the task targets. Keep the tests "
            "short and check every expected value by hand: a wrong expected value gets "
            f"the task rejected.{shown}"
        ),
    ]


def describe_failure(failure: Mapping[str, Any]) -> str:
    """One failure as the optimizer reads it: task, the solver's answer, the feedback."""
    task = failure.get("task") or {}
    verdict = failure.get("verdict") or {}
    answer = str(failure.get("answer", ""))[:1200]
    return (
        f"Task {task.get('id')} (weakness: {task.get('weakness') or 'unknown'}):\n"
        f"{task.get('prompt', '')}\nSolver's answer:\n{answer}\n"
        f"Verifier feedback: {str(verdict.get('feedback', ''))[:800]}"
    )
