"""Bad input to ``Sandbox.run`` is refused with ``SandboxInputError`` before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipdo.errors import SandboxInputError
from sipdo.sandbox import Limits, Sandbox

BAD_FILES = {
    "absolute": {"/tmp/sipdo-evil.py": "x"},
    "dotdot": {"../evil.py": "x"},
    "dotdot-inside": {"a/../../evil.py": "x"},
    "dot": {"./main.py": "x"},
    "empty-name": {"": "x"},
    "backslash": {"a\\b.py": "x"},
    "nul": {"a\x00b": "x"},
    "file-and-dir": {"a": "x", "a/b.py": "y"},
    "non-utf8-content": {"main.py": "print('\udcff')"},
    "non-str-content": {"main.py": 42},
}


@pytest.mark.parametrize("files", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_files_are_refused(sandbox: Sandbox, files: dict[str, object]) -> None:
    with pytest.raises(SandboxInputError):
        sandbox.run(files, ["python", "-c", "pass"])  # type: ignore[arg-type]
    assert not Path("/tmp/sipdo-evil.py").exists()


@pytest.mark.parametrize(
    "command",
    [[], (), "python -c pass", ["python", "-c", "print('\udcff')"], ["python", "a\x00b"], [1]],
    ids=["empty-list", "empty-tuple", "string", "non-utf8", "nul", "non-str"],
)
def test_bad_commands_are_refused(sandbox: Sandbox, command: object) -> None:
    with pytest.raises(SandboxInputError):
        sandbox.run({}, command)  # type: ignore[arg-type]


def test_non_utf8_stdin_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxInputError):
        sandbox.run({}, ["cat"], stdin="\udcff")


def test_bad_limits_are_refused() -> None:
    with pytest.raises(SandboxInputError):
        Limits(timeout_s=0)
    with pytest.raises(SandboxInputError):
        Limits(memory_mb=-1)


def test_sandbox_still_works_after_refusals(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxInputError):
        sandbox.run({"../x": "x"}, ["true"])
    result = sandbox.run({"main.py": "print('fine')"}, ["python", "main.py"])
    assert result.stdout == "fine\n"


def test_bytes_stdin_and_binary_files_pass_through(sandbox: Sandbox) -> None:
    blob = bytes(range(256))
    result = sandbox.run(
        {
            "blob.bin": blob,
            "main.py": "import sys\nsys.stdout.write(open('blob.bin', 'rb').read().hex())\n"
            "sys.stdout.write(sys.stdin.read())\n",
        },
        ["python", "main.py"],
        stdin=b"!",
    )
    assert result.stdout == blob.hex() + "!"
