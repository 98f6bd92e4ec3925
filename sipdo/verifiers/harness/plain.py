"""Run a plain test module without pytest, with the outcomes pytest would report (stdlib only).

Most generated tasks' tests (HumanEval's ``check``, MBPP's assert lines) are
functions ``test_*()`` that call the code and assert: pytest's collection,
configuration and reporting, a large part of a short run, add nothing to
them, and a fresh interpreter need not even import it. ``is_plain`` reads
the module's source and says whether it uses nothing of pytest: every
top-level name starting with ``test`` (or ``Test``) is a ``def`` without
decorators or parameters (no fixtures) that does not ``yield``; no
``import pytest``, ``unittest`` or ``from ... import *``; no xunit set-up or
teardown functions, ``pytestmark`` or other names pytest reads. Anything else,
and a module that does not parse, goes to pytest as before.

``run`` then does what pytest does for such a module: imports it (the
working directory is already first on ``sys.path``), calls the test
functions in the order the module defines them, and reports each as
``passed`` or ``failed``, the exit code as pytest's (0 passed, 1 failed, 2 a
collection error, 5 no tests). What differs, documented: a failing
assertion's message is the exception's text or, for a bare ``assert``, its
source line (pytest would show its rewritten explanation), and a module that
fails to import is reported with its exception as the message.
"""

from __future__ import annotations

import ast
import importlib
import os
import traceback
from collections.abc import Callable
from typing import Any

# Module-level names pytest gives a meaning to (xunit set-up, marks, plugins, collection).
_PYTEST_NAMES = frozenset(
    {
        "setup_module",
        "teardown_module",
        "setUpModule",
        "tearDownModule",
        "setup_function",
        "teardown_function",
        "setup",
        "teardown",
        "pytestmark",
        "pytest_plugins",
        "collect_ignore",
        "collect_ignore_glob",
        "__test__",
    }
)
_PYTEST_MODULES = ("pytest", "_pytest", "unittest", "py")


def _bound_names(node: ast.stmt) -> list[str]:
    """Names a top-level statement binds (imports, assignments, definitions)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    names: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.append(sub.id)
        elif isinstance(sub, ast.alias):
            names.append((sub.asname or sub.name).split(".")[0])
        elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(sub.name)
    return names


def _plain_test(node: ast.stmt) -> bool:
    if not isinstance(node, ast.FunctionDef) or node.decorator_list:
        return False
    a = node.args
    if a.posonlyargs or a.args or a.vararg or a.kwonlyargs or a.kwarg:
        return False
    return not any(isinstance(n, ast.Yield | ast.YieldFrom) for n in ast.walk(node))


def is_plain(source: str) -> bool:
    """Whether the test module uses nothing of pytest (see the module docstring)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] in _PYTEST_MODULES for a in node.names
        ):
            return False
        if isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in _PYTEST_MODULES:
                return False
            if any(a.name == "*" for a in node.names):
                return False
    for node in tree.body:
        for name in _bound_names(node):
            if name in _PYTEST_NAMES or name.startswith("pytest_"):
                return False
            if name.startswith("Test") or (name.startswith("test") and not _plain_test(node)):
                return False
    return True


def _message(exc: BaseException, path: str) -> str:
    """``call: <exception>``; a bare ``assert`` shows its source line."""
    name = type(exc).__name__
    text = str(exc)
    if not text and isinstance(exc, AssertionError):
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
        text = (frames[-1].line or "").strip() if frames else ""
    return f"call: {name}: {text}" if text else f"call: {name}"


_COMPILED: dict[tuple[str, str], Any] = {}


def module_from_source(name: str, path: str, source: str) -> Any:
    """Module ``name`` made from ``source`` in memory, as if imported from ``path`` (which
    need not exist: its lines are in ``linecache`` for tracebacks and assertion messages).
    The same source made twice is compiled once."""
    import linecache
    import sys
    import types

    code = _COMPILED.get((path, source))
    if code is None:
        code = _COMPILED[(path, source)] = compile(source, path, "exec", dont_inherit=True)
    module = types.ModuleType(name)
    module.__file__ = path
    linecache.cache[path] = (len(source), None, source.splitlines(True), path)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def run(
    tests_file: str,
    before_each: Callable[[], None],
    report: Callable[[str, str, str, str], None],
    source: str | None = None,
) -> int:
    """Import ``tests_file`` and call its tests, ``before_each`` first; ``report(node id,
    phase, outcome, message)`` for each test (``call``) and a module that does not import
    (``collect``, the file's node id); returns pytest's exit code. With ``source`` the
    module is made from that text instead (``module_from_source``): no file is read."""
    name = os.path.splitext(os.path.basename(tests_file))[0]
    path = os.path.abspath(tests_file)
    try:
        if source is None:
            module = importlib.import_module(name)
        else:
            module = module_from_source(name, path, source)
    except BaseException as exc:  # whatever the module raises is its collection error
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        report(tests_file, "collect", "failed", text[-400:])
        return 2
    tests: list[tuple[str, Any]] = [
        (n, f)
        for n, f in vars(module).items()
        if n.startswith("test") and callable(f) and getattr(f, "__module__", None) == name
    ]
    if not tests:
        return 5
    failed = False
    for test_name, fn in tests:
        before_each()
        try:
            fn()
        except BaseException as exc:  # the test's failure, whatever it raised
            failed = True
            report(f"{tests_file}::{test_name}", "call", "failed", _message(exc, path)[:400])
        else:
            report(f"{tests_file}::{test_name}", "call", "passed", "")
    return 1 if failed else 0
