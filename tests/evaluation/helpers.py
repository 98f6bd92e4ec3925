"""Shared bits of the evaluation tests: a tiny task set and scripted replies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from sipdo.verifiers.types import CodeTask

# The tests check three inputs: an answer that hard-codes them passes the tests and is
# wrong on 1 and 2 (the two gradings disagree on it).
ABS = CodeTask(
    id="absval",
    prompt='def absval(x: int) -> int:\n    """The absolute value of x."""\n',
    entry_point="absval",
    reference_solution="def absval(x: int) -> int:\n    return x if x >= 0 else -x\n",
    tests="from solution import absval\n\ndef test_abs():\n    assert absval(3) == 3\n"
    "    assert absval(-3) == 3\n    assert absval(0) == 0\n",
)
DOUBLE = CodeTask(
    id="double",
    prompt='def double(x: int) -> int:\n    """Twice x."""\n',
    entry_point="double",
    reference_solution="def double(x: int) -> int:\n    return 2 * x\n",
    tests="from solution import double\n\ndef test_double():\n    assert double(2) == 4\n",
)
BROKEN = CodeTask(
    id="broken",
    prompt='def one() -> int:\n    """One."""\n',
    entry_point="one",
    reference_solution="def one() -> int:\n    return 2\n",
    tests="from solution import one\n\ndef test_one():\n    assert one() == 1\n",
)

ANSWERS = {
    "absval": "```python\ndef absval(x: int) -> int:\n    return 3 if x else 0\n```",
    "double": "```python\ndef double(x: int) -> int:\n    return x + x\n```",
    "one": "```python\ndef one() -> int:\n    return 1\n```",
}


def by_entry(answers: dict[str, Any]) -> Any:
    """A responder answering each task by the entry point its prompt names."""

    def respond(messages: list[BaseMessage]) -> Any:
        text = "\n".join(str(m.content) for m in messages)
        for entry, answer in answers.items():
            if f"def {entry}(" in text:
                return answer
        raise AssertionError(f"no scripted answer for {text[-200:]!r}")

    return respond


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), "utf-8"
    )
    return path
