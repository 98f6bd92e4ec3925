"""AST mutants of a reference solution, for mutation adequacy (pure: nothing executes).

Operators: arithmetic and bitwise operators swapped, comparisons flipped or
their boundary moved (``<`` to ``<=``), constants nudged (``n`` to ``n+1`` /
``n-1``, ``True`` / ``False``, strings emptied), ``and`` / ``or`` swapped,
``not`` and unary minus dropped, ``if`` / ``while`` conditions negated,
statements removed, return values replaced by ``None``, ``break`` /
``continue`` swapped. Docstrings, annotations, imports and definitions are
left alone. Mutants identical to the reference (or to each other) after
``ast.unparse`` are dropped; above ``limit`` an evenly spread subset is kept.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable
from dataclasses import dataclass

from sipdo import pycode

_ID = "_sipdo_mid"
_BINOPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.LShift: ast.RShift, ast.RShift: ast.LShift,
    ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.BitXor: ast.BitOr,
}  # fmt: skip
_CMPOPS: dict[type[ast.cmpop], list[type[ast.cmpop]]] = {
    ast.Lt: [ast.LtE, ast.Gt], ast.LtE: [ast.Lt], ast.Gt: [ast.GtE, ast.Lt], ast.GtE: [ast.Gt],
    ast.Eq: [ast.NotEq], ast.NotEq: [ast.Eq], ast.In: [ast.NotIn], ast.NotIn: [ast.In],
    ast.Is: [ast.IsNot], ast.IsNot: [ast.Is],
}  # fmt: skip
_KEEP_STMTS: tuple[type[ast.stmt], ...] = (ast.Import, ast.ImportFrom, ast.FunctionDef)
_KEEP_STMTS += (ast.AsyncFunctionDef, ast.ClassDef, ast.Global, ast.Nonlocal, ast.Pass)

Edit = Callable[[ast.AST], ast.AST]


@dataclass(frozen=True)
class Mutant:
    """One mutant: its full module source and what was changed."""

    source: str
    description: str


def _is_docstring(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _protected(tree: ast.AST) -> set[int]:
    """ids of nodes never mutated: docstrings, annotations, decorators."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        roots: list[ast.AST | None] = []
        if _is_docstring(node):
            roots.append(node)
        if isinstance(node, ast.arg | ast.AnnAssign):
            roots.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            roots += [node.returns, *node.decorator_list]
        for root in roots:
            if root is not None:
                skip.update(id(n) for n in ast.walk(root))
    return skip


def _set(attr: str, value: object) -> Edit:
    def edit(node: ast.AST) -> ast.AST:
        setattr(node, attr, value)
        return node

    return edit


def _variants(node: ast.AST) -> list[Edit]:
    """The edits that apply to ``node``; each returns the replacement node."""
    out: list[Edit] = []
    if isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _BINOPS:
        out.append(_set("op", _BINOPS[type(node.op)]()))
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for new in _CMPOPS.get(type(op), []):
                ops = list(node.ops)
                ops[i] = new()
                out.append(_set("ops", ops))
    elif isinstance(node, ast.BoolOp):
        out.append(_set("op", ast.Or() if isinstance(node.op, ast.And) else ast.And()))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
        out.append(lambda n: n.operand)  # type: ignore[attr-defined]
    elif isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            out.append(_set("value", not v))
        elif isinstance(v, int):
            out += [_set("value", v + 1)] + ([_set("value", v - 1)] if v != 0 else [])
        elif isinstance(v, float):
            out += [_set("value", v + 1.0), _set("value", -v if v else 1.0)]
        elif isinstance(v, str):
            out.append(_set("value", "" if v else "a"))
    elif isinstance(node, ast.If | ast.While | ast.IfExp):
        out.append(lambda n: _set("test", ast.UnaryOp(ast.Not(), n.test))(n))  # type: ignore[attr-defined]
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):
            out.append(_set("value", ast.Constant(None)))
    elif isinstance(node, ast.Break | ast.Continue):
        out.append(lambda n: ast.Continue() if isinstance(n, ast.Break) else ast.Break())
    if isinstance(node, ast.stmt) and not isinstance(node, _KEEP_STMTS) and not _is_docstring(node):
        out.append(lambda n: ast.Pass())
    return out


class _Apply(ast.NodeTransformer):
    def __init__(self, target: int, edit: Edit) -> None:
        self.target, self.edit = target, edit

    def visit(self, node: ast.AST) -> ast.AST:
        if getattr(node, _ID, None) == self.target:
            new: ast.AST = ast.copy_location(self.edit(node), node)
            setattr(new, _ID, self.target)
            return new
        visited: ast.AST = super().visit(node)
        return visited


def mutants(source: str, limit: int = 40) -> list[Mutant]:
    """Distinct, compilable mutants of ``source``; raises ``SyntaxError`` if it does not parse."""
    tree = pycode.parse(source)
    skip = _protected(tree)
    sites: list[tuple[int, Edit, ast.AST]] = []
    for i, node in enumerate(ast.walk(tree)):
        setattr(node, _ID, i)
        if id(node) not in skip:
            sites += [(i, edit, node) for edit in _variants(node)]
    original = ast.unparse(tree)
    seen = {original}
    found: list[Mutant] = []
    for target, edit, node in sites:
        before = (
            ast.unparse(node)
            if not isinstance(node, ast.stmt)
            else ast.unparse(node).split("\n")[0]
        )
        mutated = _Apply(target, edit).visit(copy.deepcopy(tree))
        text = ast.unparse(ast.fix_missing_locations(mutated))
        if text in seen:
            continue
        try:
            compile(text, "<mutant>", "exec")
        except (SyntaxError, ValueError):
            continue
        seen.add(text)
        found.append(
            Mutant(
                text,
                f"line {getattr(node, 'lineno', '?')}: {_change(before, node, mutated, target)}",
            )
        )
    if len(found) > limit > 0:
        found = [found[(k * len(found)) // limit] for k in range(limit)]
    return found


def _change(before: str, node: ast.AST, mutated: ast.AST, target: int) -> str:
    after = next((n for n in ast.walk(mutated) if getattr(n, _ID, None) == target), None)
    after_text = (
        "(removed)" if isinstance(after, ast.Pass) and not isinstance(node, ast.Pass) else ""
    )
    if after is not None and not after_text:
        after_text = ast.unparse(after).split("\n")[0]
    return f"`{before[:70]}` -> `{after_text[:70]}`"
