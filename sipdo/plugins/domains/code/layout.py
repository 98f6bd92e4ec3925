"""The generator's reply for one coding task: ``GeneratedCodeTask``, and the markdown
layout it is written in, read (``parse_generated_markdown``) and written back
(``render_markdown``).

The layout is a WEAKNESS line, an optional PRECONDITION line and two ```python
blocks: the reference function with its docstring, and pytest tests importing it
from ``solution``. The statement the solver sees is the reference's signature and
docstring (``statement_of``), so it is never written twice.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from sipdo import pycode
from sipdo.pycode import PYTHON_TAGS, fenced_blocks, find_entry_point
from sipdo.structured import parse_structured


class GeneratedCodeTask(BaseModel):
    """What the generator returns for one coding task."""

    prompt: str = Field(description="Function signature and docstring, no body.")
    entry_point: str = Field(description="Name of the function.")
    reference_solution: str = Field(description="Complete module source defining the function.")
    tests: str = Field(description="pytest source; imports the function from `solution`.")
    weakness: str = Field(default="", description="The weakness this task targets.")
    precondition: str = Field(
        default="",
        description="Boolean Python expression over the parameters that every valid input "
        "satisfies (the input contract; empty: inferred from the tests).",
    )


_IMPORTED = re.compile(r"^\s*from\s+solution\s+import\s+\(?\s*([A-Za-z_]\w*)", re.MULTILINE)
_WEAKNESS = re.compile(r"^[\s*#>_-]*weakness[\s*_]*:[\s*_]*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_PRECONDITION = re.compile(
    r"^[\s*#>_-]*precondition[\s*_]*:[\s*_`]*(.+?)[\s`]*$", re.IGNORECASE | re.MULTILINE
)


def statement_of(source: str, entry_point: str) -> str:
    """The task statement hidden in a reference solution: the signature and docstring
    of ``entry_point``, after the imports its signature uses (``from typing import
    List``); ``ValueError`` if there is no such function or no docstring."""
    try:
        tree = pycode.parse(source)
    except SyntaxError as exc:
        raise ValueError(
            f"the reference solution does not parse: {exc.msg} (line {exc.lineno})"
        ) from None
    found = find_entry_point(source, entry_point, tree=tree)
    node = found.function
    if node is None:
        raise ValueError(
            f"the reference solution does not define {entry_point}(): {found.function_reason()}"
        )
    if ast.get_docstring(node) is None:
        raise ValueError(
            f"{entry_point}() has no docstring: the docstring is the task statement "
            "the solver sees, so it must state the behaviour precisely"
        )
    lines = source.splitlines()
    first = found.first_line
    doc_end = node.body[0].end_lineno or node.body[0].lineno
    head = "\n".join(lines[first - 1 : doc_end])
    signature = "\n".join(lines[first - 1 : node.body[0].lineno - 1])
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    used = [
        ast.get_source_segment(source, imp) or ""
        for imp in imports
        if any(
            re.search(rf"\b{re.escape((a.asname or a.name).split('.')[0])}\b", signature)
            for a in imp.names
        )
    ]
    return "\n".join([*used, "", head] if used else [head]).strip() + "\n"


def parse_generated_markdown(text: str) -> GeneratedCodeTask:
    """A ``GeneratedCodeTask`` from the markdown layout (``MARKDOWN_LAYOUT``): the tests
    are the last block importing from ``solution`` whose function another block
    defines, that block is the reference, its signature and docstring the statement.
    A reply without such blocks but with a JSON object is read as JSON. ``ValueError``
    says what is missing."""
    blocks = [body for lang, body in fenced_blocks(text) if lang in (*PYTHON_TAGS, "")]
    test_blocks = [b for b in reversed(blocks) if _IMPORTED.search(b)]
    if not test_blocks:
        if "{" in text:
            try:
                return parse_structured(text, GeneratedCodeTask)
            except ValueError:
                pass
        raise ValueError(
            "no ```python block of pytest tests that imports the function with "
            "`from solution import <name>`"
        )
    # A reply may hold several attempts (or repeat the failed task): take the last
    # block of tests whose function some other block defines.
    names: list[str] = []
    reasons: list[str] = []
    for tests in test_blocks:
        name = _IMPORTED.findall(tests)[0]
        reference = None
        for block in blocks:
            if block is tests:
                continue
            found = find_entry_point(block, name)
            if found.function is not None:
                reference = block
                break
            if re.search(rf"\bdef\s+{re.escape(name)}\b", block):
                reasons.append(found.function_reason())
        if reference is not None:
            break
        names.append(name)
    else:
        wanted = ", ".join(f"{n}()" for n in dict.fromkeys(names))
        why = "".join(f"; {r}" for r in dict.fromkeys(reasons))
        raise ValueError(
            f"the tests import {wanted} but no other ```python block defines it "
            f"(the reference solution, with its docstring){why}"
        )
    weakness = _WEAKNESS.search(text)
    precondition = _PRECONDITION.search(text)
    return GeneratedCodeTask(
        prompt=statement_of(reference, name),
        entry_point=name,
        reference_solution=reference.strip() + "\n",
        tests=tests.strip() + "\n",
        weakness=weakness.group(1).strip("*_ ") if weakness else "",
        precondition=precondition.group(1).strip("*_ ") if precondition else "",
    )


def render_markdown(task: Mapping[str, Any]) -> str:
    """A task in the generator's markdown layout: the reference with the statement's
    signature and docstring in place of its own, then the tests (the inverse of
    ``parse_generated_markdown``)."""
    source = str(task["reference_solution"]).rstrip()
    lines = source.splitlines()
    found = find_entry_point(source, str(task["entry_point"]))
    node = found.function  # None for a broken user seed: shown as it is
    if node is not None:
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        before = lines[: found.first_line - 1]
        head = [line for line in str(task["prompt"]).rstrip().splitlines() if line not in before]
        after = lines[body[0].lineno - 1 :] if body else ["    pass"]
        source = "\n".join([*before, *head, *after]).strip()
    return (
        f"WEAKNESS: {task.get('weakness') or 'edge cases'}\n\n"
        f"```python\n{source}\n```\n\n```python\n{str(task['tests']).rstrip()}\n```"
    )


def usable_precondition(text: str, reference: str, entry: str) -> str:
    """The generator's precondition if it parses (``True`` means none); otherwise empty, so
    the contract is inferred from the tests (a bad line never costs the task)."""
    from sipdo.verifiers.contract import check_precondition_source

    text = text.strip()
    if not text or text in ("True", "None", "none", "-"):
        return ""
    node = find_entry_point(reference, entry).function
    if node is None:
        return ""
    params = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
    return "" if check_precondition_source(text, params) else text
