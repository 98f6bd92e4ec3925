"""Layers point down: the core modules the plugins build on import no plugin."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["sipdo.structured", "sipdo.calls", "sipdo.pycode", "sipdo.answers"]
)
def test_core_modules_import_nothing_from_plugins_or_graph(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "print(' '.join(m for m in sys.modules if m.startswith(('sipdo.plugins', 'sipdo.graph'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_moved_names_are_still_importable_from_their_old_homes() -> None:
    from sipdo import calls, jsonfix, pycode, structured
    from sipdo.plugins.models import jsonfix as old_jsonfix

    assert structured.CallStats is calls.CallStats
    assert structured.ainvoke_text is calls.ainvoke_text
    assert structured.extract_code is pycode.extract_code
    assert structured.fenced_blocks is pycode.fenced_blocks
    assert old_jsonfix.escape_control_chars_in_strings is jsonfix.escape_control_chars_in_strings
