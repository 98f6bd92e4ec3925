"""The one check of whether a source defines the entry point, and what uses it."""

from __future__ import annotations

import gc
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sipdo import pycode
from sipdo.evaluation.grading import defines
from sipdo.plugins.domains.code import CodeDomain, GeneratedCodeTask, parse_generated_markdown
from sipdo.pycode import extract_code, find_entry_point
from sipdo.verifiers.contract import check_precondition_source
from sipdo.verifiers.signature import signature


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip()


@pytest.mark.parametrize(
    ("source", "kind", "line"),
    [
        ("def f(x):\n    return x\n", "def", 1),
        ("async def f(x):\n    return x\n", "async def", 1),
        ("import functools\n\n@functools.cache\n@other\ndef f(x):\n    return x\n", "def", 3),
        ("class f:\n    pass\n", "class", 1),
        ("f = lambda x: x\n", "assignment", 1),
        ("g, f = 1, len\n", "assignment", 1),
        ("try:\n    from m import f\nexcept ImportError:\n    def f(n): ...\n", "def", 4),
        ("if True:\n    def f(x): return x\n", "def", 2),
        # the last binding wins, as on import
        ("def f(x):\n    return x\n\nf = 3\n", "assignment", 4),
    ],
)
def test_module_level_definitions_are_found(source: str, kind: str, line: int) -> None:
    found = find_entry_point(source, "f")
    assert found
    assert found.kind == kind
    assert found.first_line == line
    assert (found.function is not None) == kind.endswith("def")
    assert defines(source, "f")


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("class Solution:\n    def f(self, x):\n        return x\n", "method of class Solution"),
        ("def outer():\n    def f(x):\n        return x\n", "nested inside outer()"),
        ("def f(x):\n    return (x\n", "does not parse: '(' was never closed (line 2)"),
        ("de f(x): pass\n", "does not parse: invalid syntax (line 1)"),
        ("from solution import f\n\ndef test_f(): assert f(1)\n", "defines no module-level f"),
        ("if __name__ == '__main__':\n    def f(x): return x\n", "defines no module-level f"),
        ("def ff(x):\n    return x\n# def f(x)\n", "defines no module-level f"),
        ("x = 'def f(y): pass'\n", "defines no module-level f"),
        ("", "defines no module-level f"),
        ("a\x00b", "does not parse"),
    ],
)
def test_what_is_not_a_definition_says_why(source: str, reason: str) -> None:
    found = find_entry_point(source, "f")
    assert not found
    assert found.node is None
    assert found.function is None
    assert reason in found.reason
    assert found.function_reason() == found.reason
    assert not defines(source, "f")


def test_a_class_or_assignment_is_a_definition_but_not_a_function() -> None:
    found = find_entry_point("f = len\n", "f")
    assert found
    assert found.function is None
    assert found.function_reason() == "f is defined by an assignment (line 1), not a def"


def test_extract_code_takes_the_block_that_really_defines_the_entry_point() -> None:
    reply = (
        "```python\nclass Solution:\n    def f(self, x):\n        return 0\n```\n"
        "```python\nfrom solution import f\nassert f(1) == 1\n```\n"
        "```python\ndef f(x):\n    return x\n```\n"
    )
    assert extract_code(reply, "f") == "def f(x):\n    return x\n"
    # none defines g: the first python block, as before
    assert extract_code(reply, "g").startswith("class Solution:")


def test_every_caller_reads_async_and_decorated_defs_the_same_way() -> None:
    source = src(
        '''
        import functools
        from typing import List

        @functools.cache
        async def f(xs: List[int], n: int) -> int:
            """Sum."""
            return sum(xs) + n
        '''
    )
    assert signature(source, "f").params == ("xs", "n")
    assert check_precondition_source("async def precondition(xs, n): return True", ["xs"])
    assert check_precondition_source("def precondition(xs, n):\n    return n > 0", ["xs"]) is None
    reply = f"WEAKNESS: sums\n```python\n{source}```\n```python\nfrom solution import f\n```"
    gen = parse_generated_markdown(reply)
    head = "import functools\nfrom typing import List\n\n@functools.cache\nasync def f("
    assert gen.prompt.startswith(head)


def test_a_reference_defining_the_entry_point_only_as_a_method_is_refused() -> None:
    method = "class Box:\n    def f(self, x):\n        '''Id.'''\n        return x\n"
    reply = f"```python\n{method}```\n```python\nfrom solution import f\n```"
    with pytest.raises(ValueError, match="only defined as a method of class Box"):
        parse_generated_markdown(reply)
    gen = GeneratedCodeTask(
        prompt="def f(x):\n    '''Id.'''\n",
        entry_point="f",
        reference_solution=method,
        tests="from solution import f\n",
    )
    with pytest.raises(ValueError, match=r"does not define f\(\): f is only defined as a method"):
        CodeDomain().task_from_generated(gen, difficulty=1, weakness="", provenance={})


class _Finalized:
    def __del__(self) -> None:
        time.sleep(0)  # Python code in a finalizer: the thread may be switched here


def test_parse_is_safe_in_several_threads_at_once() -> None:
    # On CPython 3.11, two threads in ast.parse while a collection runs finalizers
    # fail with "AST constructor recursion depth mismatch" within seconds (this
    # workload with ast.parse did, 4 runs of 4); pycode.parse takes turns.
    source = "\n".join(
        f"def f{i}(x):\n    return [(a, {{b: c for b, c in zip(x, x)}}) for a in x if a > {i}]"
        for i in range(30)
    )
    errors: list[BaseException] = []
    done = threading.Event()
    trees: list[int] = []

    def garbage() -> None:
        for _ in range(20_000):
            a, b = _Finalized(), _Finalized()
            a.other, b.other = b, a  # type: ignore[attr-defined]
        done.set()

    def parse() -> None:
        while not done.is_set():
            try:
                trees.append(len(pycode.parse(source).body))
            except BaseException as exc:  # reported below
                errors.append(exc)
                return

    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(50)
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=parse) for _ in range(2)]
        threads.append(threading.Thread(target=garbage))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        gc.set_threshold(*threshold)
        sys.setswitchinterval(interval)
    assert not errors, errors[0]
    assert trees
    assert set(trees) == {30}


def test_no_host_module_builds_syntax_trees_past_the_lock() -> None:
    # The harness modules run alone in a sandbox. The plan and qa executors run there
    # too but are imported by the host as well: self-contained, they take a lock of
    # their own. Everything else goes through pycode.parse.
    root = Path(pycode.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if "harness" in path.parts or path.name == "pycode.py":
            continue
        lines = path.read_text().splitlines()
        for n, line in enumerate(lines, 1):
            locked = n > 1 and "with _AST_LOCK:" in lines[n - 2]
            if ("ast.parse(" in line and not locked) or (
                "literal_eval(" in line and "pycode.parse" not in line
            ):
                offenders.append(f"{path.relative_to(root)}:{n}")
    assert not offenders, offenders
