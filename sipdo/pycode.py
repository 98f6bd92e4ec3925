"""Python source in model replies: fenced blocks, the block holding an entry point, and
the one check of whether a source defines it.

``find_entry_point`` is read with ``ast`` (nothing executes) and answers the way
``from solution import NAME`` would: only a module-level binding counts, the last
one wins, and the bodies of module-level ``if`` / ``try`` / ``with`` statements are
module level too (``if __name__ == "__main__":`` is not: an import never runs it).
A method of the same name, or a function nested in another, is not a definition,
and the reason says so; so does a source that does not parse. Imports do not
count: in a reply they are the tests importing the function, not defining it.

``parse`` is ``ast.parse`` for code that may run in several threads at once: on
CPython before 3.13 the ``ast`` module keeps one recursion counter for all threads
(python/cpython#106905), so two threads building syntax trees at the same time can
fail with ``SystemError: AST constructor recursion depth mismatch`` (a thread
switch inside the C constructor is enough — a finalizer that runs Python code
during a garbage collection). Every syntax tree sipdo builds on the host goes
through it; the harness modules run alone in their sandbox and do not, and
the plan and qa executors (self-contained: they run in the sandbox and are
imported by the host) take a lock of their own.
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, overload

PYTHON_TAGS = ("python", "py", "python3")

_AST_LOCK = threading.Lock()


@overload
def parse(source: str, mode: Literal["exec"] = "exec") -> ast.Module: ...
@overload
def parse(source: str, mode: Literal["eval"]) -> ast.Expression: ...


def parse(source: str, mode: Literal["exec", "eval"] = "exec") -> ast.Module | ast.Expression:
    """``ast.parse(source, mode=mode)``, one thread at a time (see the module docstring)."""
    with _AST_LOCK:
        return ast.parse(source, mode="eval") if mode == "eval" else ast.parse(source)


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)

Kind = Literal["def", "async def", "class", "assignment"]
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Definition:
    """Where a source binds ``name`` at module level, or why it does not.

    True when found. ``node`` is the binding statement (the last one), ``kind``
    what it is; ``reason`` says why nothing was found (it never is empty then).
    """

    name: str
    node: ast.stmt | None = None
    kind: Kind | None = None
    reason: str = ""

    def __bool__(self) -> bool:
        return self.node is not None

    @property
    def function(self) -> FunctionNode | None:
        """The ``def`` / ``async def`` node, None for a class, an assignment or nothing."""
        return self.node if isinstance(self.node, ast.FunctionDef | ast.AsyncFunctionDef) else None

    @property
    def first_line(self) -> int:
        """The definition's first line (its first decorator's, if decorated); 0 if none."""
        if self.node is None:
            return 0
        decorators: list[ast.expr] = getattr(self.node, "decorator_list", [])
        return min([self.node.lineno, *(d.lineno for d in decorators)])

    def function_reason(self) -> str:
        """Why this is not a function definition ("" when it is)."""
        if self.function is not None:
            return ""
        if self.node is None:
            return self.reason
        line = self.node.lineno
        return f"{self.name} is defined by {_article(self.kind)} (line {line}), not a def"


def _article(kind: Kind | None) -> str:
    return "an assignment" if kind == "assignment" else f"a {kind}"


def _is_main_guard(node: ast.If) -> bool:
    test = node.test
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators)
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements an import executes at module level, in source order."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            if not _is_main_guard(node):
                yield from _module_level(node.body)
                yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try | ast.TryStar):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse):
                yield from _module_level(block)
            yield from _module_level(node.finalbody)
        elif isinstance(node, ast.With | ast.AsyncWith):
            yield from _module_level(node.body)


def _binds(node: ast.stmt, name: str) -> Kind | None:
    if isinstance(node, ast.FunctionDef) and node.name == name:
        return "def"
    if isinstance(node, ast.AsyncFunctionDef) and node.name == name:
        return "async def"
    if isinstance(node, ast.ClassDef) and node.name == name:
        return "class"
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets = [node.target]
    names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return "assignment" if name in names else None


def _nested_reason(tree: ast.Module, name: str) -> str:
    """Why a ``def name`` found somewhere below module level does not count."""
    for outer in ast.walk(tree):
        if not isinstance(outer, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in outer.body:
            if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef) and inner.name == name:
                where = (
                    f"a method of class {outer.name}"
                    if isinstance(outer, ast.ClassDef)
                    else f"nested inside {outer.name}()"
                )
                line = inner.lineno
                return f"{name} is only defined as {where} (line {line}), not at module level"
    return f"the source defines no module-level {name}"


def find_entry_point(source: str, name: str, *, tree: ast.Module | None = None) -> Definition:
    """The module-level definition of ``name`` in ``source`` (see the module docstring).

    ``tree`` is ``source`` already parsed, to save parsing it twice.
    """
    if tree is None:
        try:
            tree = parse(source)
        except SyntaxError as exc:
            why = f"the source does not parse: {exc.msg} (line {exc.lineno})"
            return Definition(name, reason=why)
        except ValueError as exc:  # null bytes
            return Definition(name, reason=f"the source does not parse: {exc}")
    found: Definition | None = None
    for node in _module_level(tree.body):
        kind = _binds(node, name)
        if kind is not None:
            found = Definition(name, node, kind)
    return found or Definition(name, reason=_nested_reason(tree, name))


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block of ``text`` as (language tag in lower case, body); a block
    left open at the end of the text runs to the end."""
    return [(lang.lower(), body) for lang, body in _FENCE.findall(text)]


def extract_code(text: str, entry_point: str | None = None) -> str:
    """Python source from a reply: the fenced block defining ``entry_point``, else the
    first python fence, else any fence, else the raw text."""
    fences = fenced_blocks(text)
    python = [body for lang, body in fences if lang in PYTHON_TAGS]
    if entry_point:
        for body in python + [body for _, body in fences]:
            if find_entry_point(body, entry_point):
                return str(body).strip() + "\n"
    for body in python or [body for _, body in fences]:
        return str(body).strip() + "\n"
    return text.strip() + "\n"
