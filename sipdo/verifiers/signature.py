"""Parameter specs from the entry point's signature, read with ``ast`` (nothing executes).

Specs are the JSON type descriptions consumed by the in-sandbox generator
(``harness/gen.py``). Unknown or missing annotations become ``{"k": "any"}``,
which the generator refines from the arguments the task's tests pass.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from sipdo import pycode
from sipdo.errors import VerificationError
from sipdo.pycode import find_entry_point

Spec = dict[str, Any]

_SCALARS = {
    "int": "int",
    "float": "float",
    "bool": "bool",
    "str": "str",
    "bytes": "bytes",
    "None": "none",
}
_SEQS = {
    "list": "list",
    "List": "list",
    "Sequence": "list",
    "Iterable": "list",
    "set": "set",
    "Set": "set",
}
_SEQS |= {"frozenset": "frozenset", "FrozenSet": "frozenset", "tuple": "tuple", "Tuple": "tuple"}
_MAPS = {"dict", "Dict", "Mapping"}


@dataclass(frozen=True)
class Signature:
    """The entry point's parameter names and their specs, in order."""

    params: tuple[str, ...]
    specs: tuple[Spec, ...]


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Constant) and node.value is None:
        return "None"
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ""


def spec_of(node: ast.expr | None) -> Spec:
    """The spec for one annotation expression."""
    if node is None:
        return {"k": "any"}
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return spec_of(pycode.parse(node.value, mode="eval").body)
        except SyntaxError:
            return {"k": "any"}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return {"k": "union", "of": [spec_of(node.left), spec_of(node.right)]}
    name = _name(node)
    if name in _SCALARS:
        return {"k": _SCALARS[name]}
    if name in _SEQS:
        return (
            {"k": _SEQS[name], "of": {"k": "int"}}
            if name not in ("tuple", "Tuple")
            else {"k": "any"}
        )
    if name in _MAPS:
        return {"k": "dict", "key": {"k": "str"}, "val": {"k": "int"}}
    if not isinstance(node, ast.Subscript):
        return {"k": "any"}
    outer = _name(node.value)
    inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    if outer == "Optional":
        return {"k": "union", "of": [spec_of(inner[0]), {"k": "none"}]}
    if outer == "Union":
        return {"k": "union", "of": [spec_of(e) for e in inner]}
    if outer in ("tuple", "Tuple"):
        if len(inner) == 2 and isinstance(inner[1], ast.Constant) and inner[1].value is Ellipsis:
            return {"k": "list", "of": spec_of(inner[0]), "tuple": True}
        return {"k": "tuple", "items": [spec_of(e) for e in inner]}
    if outer in _SEQS:
        return {"k": _SEQS[outer], "of": spec_of(inner[0])}
    if outer in _MAPS and len(inner) == 2:
        return {"k": "dict", "key": spec_of(inner[0]), "val": spec_of(inner[1])}
    return {"k": "any"}


def signature(source: str, entry_point: str) -> Signature:
    """Parameters of the top-level function ``entry_point`` in ``source``.

    Raises ``VerificationError`` when the source does not parse or defines no
    such function (the task itself is broken, not a candidate).
    """
    try:
        tree = pycode.parse(source)
    except SyntaxError as exc:
        raise VerificationError(f"reference solution does not parse: {exc}") from exc
    found = find_entry_point(source, entry_point, tree=tree)
    node = found.function
    if node is None:
        raise VerificationError(
            f"reference solution defines no top-level function {entry_point!r}: "
            f"{found.function_reason()}"
        )
    args = [*node.args.posonlyargs, *node.args.args]
    return Signature(tuple(a.arg for a in args), tuple(spec_of(a.annotation) for a in args))
