"""The shortcuts a verification run takes, each shown to be taken and to change no verdict.

- Hypothesis's Unicode tables: built once on the host in Hypothesis's own
  cache format and shipped with the runs that draw (a fresh run reads them,
  it does not walk the code points), built in every fork server before it
  forks (a child starts with them), and skipped, not broken, when
  Hypothesis's private module lacks what is called.
- ``verify_solution`` makes its reference side without the extended inputs
  (only ``verify_task`` uses them), the same cases otherwise.
- A test module that uses nothing of pytest runs without it, with the same
  outcomes and recorded calls; any other module goes to pytest.
- The harness modules a run imports go with their bytecode (bytes files in a
  ``RunRequest``), which the run loads instead of compiling, on every backend.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import marshal
import re
import sys
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sipdo.sandbox import Limits, Sandbox, _zygote
from sipdo.sandbox.process import ProcessSandbox
from sipdo.verifiers import (
    CodeTask,
    VerifierConfig,
    analyze_mutants,
    unicode_tables,
    verify_solution,
)
from sipdo.verifiers.harness import SCRIPT_NAMES, bytecode, files, plain, script
from sipdo.verifiers.reference import read_reference, reference_flow, reference_request
from sipdo.verifiers.runs import Flow, RunRequest, drive, parse
from tests.verifiers.recording import Recording

FAST = Limits(timeout_s=60, memory_mb=512, output_bytes=1_000_000)
TABLES = f".hypothesis/unicode_data/{unicodedata.unidata_version}"

# Counts the code points Hypothesis looks up: building the category table looks up all of them.
TABLE_PROBE = """
import json, sys, unicodedata
looked = [0]
real = unicodedata.category
def category(c):
    looked[0] += 1
    return real(c)
unicodedata.category = category
from hypothesis.internal import charmap
from hypothesis import configuration
home_at_start = vars(configuration).get("__hypothesis_home_directory")
preset = charmap._charmap is not None
storage = configuration.storage_directory("x")  # a path, or (newer) an object holding it
table = charmap.charmap()
codec = getattr(charmap, "intervals_from_codec", None)
encodable = None if codec is None else codec("utf-8")
if isinstance(encodable, tuple):  # newer: (encodable, the subset that does not round-trip)
    encodable = encodable[0]
encodable = None if encodable is None else encodable.intervals
print(json.dumps({
    "preset": preset,
    "home_at_start": None if home_at_start is None else str(home_at_start),
    "storage": str(getattr(storage, "path", storage)),
    "looked_up": looked[0],
    "Co": [list(p) for p in table["Co"]],
    "codec": None if encodable is None else [list(p) for p in encodable][:3],
}))
"""


def _probe(sandbox: Sandbox, extra: Mapping[str, str | bytes]) -> dict[str, Any]:
    res = sandbox.run({**extra, "probe.py": TABLE_PROBE}, ["python", "probe.py"], limits=FAST)
    assert res.ok, res.stderr[-2000:]
    result: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return result


def _codec_file(shipped: Mapping[str, bytes]) -> str:
    """The UTF-8 codec table's name (Hypothesis versions name it differently)."""
    [name] = [n for n in shipped if n.startswith(f"{TABLES}/codec-") and "utf-8" in n]
    return name


@pytest.fixture(scope="module")
def fresh() -> Iterator[ProcessSandbox]:
    with ProcessSandbox(mode="fresh") as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def docker_fresh() -> Iterator[Sandbox]:
    from tests.conftest import require_docker

    require_docker()
    from sipdo.sandbox.docker import DockerSandbox

    with DockerSandbox(mode="fresh", pool_size=1) as sandbox:
        yield sandbox


# -- Unicode tables ----------------------------------------------------------


def test_the_tables_are_hypothesis_own_cache_files() -> None:
    shipped = unicode_tables.cache_files()
    assert f"{TABLES}/charmap.json.gz" in shipped
    assert [n for n in shipped if n != f"{TABLES}/charmap.json.gz"] == [_codec_file(shipped)]
    from hypothesis.internal import charmap

    categories = dict(json.loads(gzip.decompress(shipped[f"{TABLES}/charmap.json.gz"])))
    assert [tuple(p) for p in categories["Co"]] == list(charmap.charmap()["Co"])
    assert unicode_tables.cache_files() is shipped  # built once per process


def test_a_fresh_run_reads_the_shipped_tables_instead_of_building_them(
    fresh: ProcessSandbox,
) -> None:
    built = _probe(fresh, {})
    assert not built["preset"]
    assert built["looked_up"] > 1_000_000
    shipped = unicode_tables.cache_files()
    read = _probe(fresh, shipped)
    assert read["looked_up"] == 0
    assert read["Co"] == built["Co"]
    assert read["codec"] == built["codec"]
    # The codec table too is read, not rebuilt: a doctored one comes back as shipped.
    name = _codec_file(shipped)
    table = [[[65, 90]], []] if "/codec-v2-" in name else [[65, 90]]
    doctored = gzip.compress(json.dumps(table).encode(), mtime=1)
    odd = _probe(fresh, {**shipped, name: doctored})
    assert odd["codec"] == [[65, 90]]


@pytest.mark.docker
def test_a_fresh_docker_run_reads_the_shipped_tables(docker_fresh: Sandbox) -> None:
    # The image's own (older) Hypothesis reads the same category table file.
    assert _probe(docker_fresh, {})["looked_up"] > 1_000_000
    assert _probe(docker_fresh, unicode_tables.cache_files())["looked_up"] == 0


def test_fork_server_children_start_with_the_tables_built(sandbox: Sandbox) -> None:
    if sandbox.kind == "docker":
        sandbox.prewarm(count=1)  # type: ignore[attr-defined]
    found = _probe(sandbox, {})
    assert found["preset"] is True
    assert found["looked_up"] == 0
    # The build's temporary storage directory is forgotten: a run's is its own cwd's.
    assert found["home_at_start"] is None
    assert found["storage"].endswith("/.hypothesis/x")
    assert not found["storage"].startswith("/tmp/")


def test_runs_that_draw_or_run_tests_carry_the_tables(squares_task: CodeTask) -> None:
    shipped = unicode_tables.cache_files()
    req = reference_request(squares_task, VerifierConfig())
    assert shipped.items() <= dict(req.files).items()


def test_runs_of_plain_tests_alone_carry_no_tables(squares_task: CodeTask) -> None:
    tests_only = VerifierConfig(n_standard=0, n_extended=0)
    names = reference_request(squares_task, tests_only).files
    assert not any(n.startswith(".hypothesis") for n in names)
    # Tests that use Hypothesis themselves draw: their runs carry the tables.
    drawing = squares_task.model_copy(
        update={"tests": "from hypothesis import given, strategies as st\n" + squares_task.tests}
    )
    shipped = unicode_tables.cache_files()
    assert shipped.items() <= dict(reference_request(drawing, tests_only).files).items()


def test_without_hypothesis_private_tables_nothing_is_shipped(tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    (fake / "hypothesis" / "internal").mkdir(parents=True)
    (fake / "hypothesis" / "__init__.py").write_text("")
    (fake / "hypothesis" / "internal" / "__init__.py").write_text("")
    (fake / "hypothesis" / "internal" / "charmap.py").write_text("# renamed in some release\n")
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={fake} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    assert unicode_tables.build(str(python)) == {}
    assert unicode_tables.build(str(tmp_path / "no-such-python")) == {}


def test_without_hypothesis_private_tables_the_server_builds_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hypothesis import configuration
    from hypothesis.internal import charmap

    monkeypatch.delattr(charmap, "charmap")
    assert _zygote.build_unicode_tables() is False
    monkeypatch.undo()
    monkeypatch.delattr(configuration, "__hypothesis_home_directory")
    assert _zygote.build_unicode_tables() is False  # would not know where it writes


# Its tests use too many characters to pin an alphabet: generation draws any text.
SHOUT = CodeTask(
    prompt="shout",
    entry_point="shout",
    reference_solution="def shout(s: str) -> str:\n    return s.upper()\n",
    tests=(
        "from solution import shout\n"
        "def test_shout():\n"
        "    s = 'The Quick Brown Fox Jumps Over The Lazy Dog, 0123456789!?'\n"
        "    assert shout(s) == s.upper()\n"
    ),
)


def test_a_task_is_graded_the_same_without_the_tables(
    fresh: ProcessSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = VerifierConfig(n_standard=30, n_extended=0)
    with_tables = drive(reference_flow(SHOUT, config), fresh)[0]
    monkeypatch.setattr(unicode_tables, "_built", {})
    assert not any(n.startswith(".hypothesis") for n in reference_request(SHOUT, config).files)
    without = drive(reference_flow(SHOUT, config), fresh)[0]
    assert len(without.group("std")) > 10
    assert with_tables.fingerprint() == without.fingerprint()


# -- solutions mode: no extended inputs -----------------------------------------


def test_grading_makes_the_reference_side_without_extended_inputs(
    squares_task: CodeTask, process_sandbox: ProcessSandbox
) -> None:
    config = VerifierConfig(n_standard=20, n_extended=30, max_mutants=4)
    grading = Recording(process_sandbox)
    assert verify_solution(squares_task, SQUARES_RIGHT, sandbox=grading, config=config).passed
    [(_, ref_request)] = [(s, r) for s, r in grading.requests if s == "_sipdo_reference.py"]
    assert ref_request["n_extended"] == 0
    assert ref_request["n_standard"] == 20
    # A reference side made with them (the mutant analysis's) serves grading too: no new run.
    checking = Recording(process_sandbox)
    analyze_mutants(squares_task, sandbox=checking, config=config)
    assert {r["n_extended"] for s, r in checking.requests if s == "_sipdo_reference.py"} == {30}
    before = len(checking.requests)
    assert verify_solution(squares_task, SQUARES_RIGHT, sandbox=checking, config=config).passed
    assert [s for s, _ in checking.requests[before:]] == ["_sipdo_call.py"]


def test_the_extended_inputs_change_no_other_case(
    squares_task: CodeTask, process_sandbox: ProcessSandbox
) -> None:
    full = VerifierConfig(n_standard=20, n_extended=30)
    lean = VerifierConfig(n_standard=20, n_extended=0)
    [a] = drive(reference_flow(squares_task, full), process_sandbox)
    [b] = drive(reference_flow(squares_task, lean), process_sandbox)
    assert a.group("ext")
    assert not b.group("ext")
    view = [(c.group, c.key, c.expected["r"], c.expected["post"]) for c in a.cases]
    assert [v for v in view if v[0] != "ext"] == [
        (c.group, c.key, c.expected["r"], c.expected["post"]) for c in b.cases
    ]


SQUARES_RIGHT = "def sum_of_squares(xs):\n    return sum(x * x for x in xs if x % 2 == 0)\n"


def test_no_standard_inputs_means_the_tests_calls_alone(
    squares_task: CodeTask, process_sandbox: ProcessSandbox
) -> None:
    # No edge cases either: a reference that loops on an edge input costs nothing here.
    [run] = drive(
        reference_flow(squares_task, VerifierConfig(n_standard=0, n_extended=0)), process_sandbox
    )
    assert run.cases
    assert {c.group for c in run.cases} == {"test"}
    assert not run.dropped
    [edges] = drive(
        reference_flow(squares_task, VerifierConfig(n_standard=1, n_extended=0)), process_sandbox
    )
    assert len(edges.group("std")) > 1  # edge cases come with any standard input


# -- plain test modules ------------------------------------------------------------

HUMANEVAL_STYLE = """
import math
from solution import f

METADATA = {"author": "x"}

def check(candidate):
    assert candidate(2) == 4
    assert math.isclose(candidate(1.5), 2.25)

def test_humaneval():
    check(f)
"""


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (HUMANEVAL_STYLE, True),
        ("from solution import f\ndef test_a():\n    assert f(1) == 1\n", True),
        ("def test_a(tmp_path):\n    pass\n", False),  # a fixture
        ("import pytest\ndef test_a():\n    pass\n", False),
        ("from pytest import raises\ndef test_a():\n    pass\n", False),
        ("import unittest\ndef test_a():\n    pass\n", False),
        ("def deco(f):\n    return f\n@deco\ndef test_a():\n    pass\n", False),
        ("class TestA:\n    def test_a(self):\n        pass\n", False),
        ("def setup_module():\n    pass\ndef test_a():\n    pass\n", False),
        ("pytestmark = []\ndef test_a():\n    pass\n", False),
        ("from solution import *\ndef test_a():\n    pass\n", False),
        ("async def test_a():\n    pass\n", False),
        ("def test_a():\n    yield 1\n", False),
        ("def test_a():\n    pass\ntest_a = 3\n", False),
        ("from helpers import test_thing\n", False),
        ("if True:\n    def test_a():\n        pass\n", False),
        ("def test_a(:\n", False),  # pytest reports the collection error
    ],
)
def test_which_modules_are_plain(source: str, expected: bool) -> None:
    assert plain.is_plain(source) is expected


def _reference_records(sandbox: Sandbox, task: CodeTask) -> list[dict[str, Any]]:
    req = reference_request(task, VerifierConfig(n_standard=10, n_extended=0))
    out = parse(req, sandbox.run(req.files, ["python", req.script], stdin=req.stdin()))
    assert out.done, out.result.stderr[-2000:]
    return out.records


def _with_pytest(task: CodeTask) -> CodeTask:
    """The same tests, made to go to pytest (they import it)."""
    return task.model_copy(update={"tests": "import pytest\n" + task.tests})


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "runner": next(r["runner"] for r in records if "exit" in r),
        "exit": next(r["exit"] for r in records if "exit" in r),
        "tests": [(r["test"], r["when"], r["o"]) for r in records if "test" in r],
        "cases": [(r["g"], r["in"], r["r"]) for r in records if "g" in r],
    }


REFERENCE = "def f(x):\n    return x * x\n"


@pytest.mark.parametrize(
    ("tests", "exit_code"),
    [
        (
            "from solution import f\ndef test_a():\n    assert f(2) == 4\n"
            "def test_b():\n    assert f(3) == 9\n",
            0,
        ),
        (
            "from solution import f\ndef test_a():\n    assert f(2) == 5\n"
            "def test_b():\n    assert f(3) == 9\n",
            1,
        ),
        (
            "from solution import f\nf(2)\nraise ValueError('broken module')\n"
            "def test_a():\n    pass\n",
            2,
        ),
        ("from solution import f\nVALUE = f(4)\n", 5),
    ],
    ids=["pass", "fail", "collection-error", "no-tests"],
)
def test_plain_modules_run_without_pytest_with_its_outcomes(
    sandbox: Sandbox, tests: str, exit_code: int
) -> None:
    task = CodeTask(prompt="square", entry_point="f", reference_solution=REFERENCE, tests=tests)
    plain_run = _summary(_reference_records(sandbox, task))
    by_pytest = _summary(_reference_records(sandbox, _with_pytest(task)))
    assert plain_run["runner"] == "plain"
    assert by_pytest["runner"] == "pytest"
    assert plain_run.pop("runner")
    assert by_pytest.pop("runner")
    assert plain_run == by_pytest  # outcomes, exit code, every recorded call and case
    assert plain_run["exit"] == exit_code


def test_a_failing_plain_assert_shows_its_line(process_sandbox: ProcessSandbox) -> None:
    tests = "from solution import f\ndef test_a():\n    assert f(2) == 5\n"
    task = CodeTask(prompt="square", entry_point="f", reference_solution=REFERENCE, tests=tests)
    [failed] = [r for r in _reference_records(process_sandbox, task) if r.get("o") == "failed"]
    assert failed["msg"] == "call: AssertionError: assert f(2) == 5"


def test_humaneval_style_tests_are_plain_and_grade_as_before(
    process_sandbox: ProcessSandbox,
) -> None:
    task = CodeTask(
        prompt="square",
        entry_point="f",
        reference_solution=REFERENCE,
        tests=HUMANEVAL_STYLE,
    )
    records = _reference_records(process_sandbox, task)
    assert _summary(records)["runner"] == "plain"
    config = VerifierConfig(n_standard=10, n_extended=0)
    wrong = "def f(x):\n    return x + x\n"
    verdicts = [
        verify_solution(t, wrong, sandbox=process_sandbox, config=config)
        for t in (task, _with_pytest(task))
    ]
    assert [v.passed for v in verdicts] == [False, False]
    view = [  # (pytest's replay messages name objects by address)
        (re.sub("0x[0-9a-f]+", "", v.feedback), v.counterexample, [c.name for c in v.checks])
        for v in verdicts
    ]
    assert view[0] == view[1]


# -- bytecode ---------------------------------------------------------------------------


def test_the_harness_bytecode_is_a_hash_checked_pyc_of_its_source() -> None:
    [(name, data)] = bytecode("codec").items()
    assert name == f"__pycache__/_sipdo_codec.{sys.implementation.cache_tag}.pyc"
    source = script("codec").encode()
    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(data[4:8], "little") == 0b11  # hash-based, checked
    assert data[8:16] == importlib.util.source_hash(source)
    code = marshal.loads(data[16:])
    assert code.co_filename == SCRIPT_NAMES["codec"]


def _doctored(source: str, marker: str) -> bytes:
    """A pyc that claims ``source`` (its hash) but holds other code: tells whether it ran."""
    header = importlib.util.MAGIC_NUMBER + (0b11).to_bytes(4, "little")
    code = compile(f"MARK = {marker!r}\n", "mod.py", "exec")
    return header + importlib.util.source_hash(source.encode()) + marshal.dumps(code)


def _import_flow(extra: Mapping[str, str | bytes]) -> Flow[str]:
    main = "import mod\nprint(getattr(mod, 'MARK', 'compiled from source'))\n"
    req = RunRequest({"mod.py": "X = 1\n", "main.py": main, **extra}, "main.py", {}, 30.0)
    [res] = yield [req]
    assert res.ok, res.stderr[-2000:]
    return res.stdout.strip()


def test_shipped_bytecode_is_loaded_and_stale_bytecode_is_not(sandbox: Sandbox) -> None:
    pyc = f"__pycache__/mod.{sys.implementation.cache_tag}.pyc"
    assert drive(_import_flow({pyc: _doctored("X = 1\n", "from pyc")}), sandbox) == "from pyc"
    stale = _doctored("X = 2\n", "stale")  # the hash of another source
    assert drive(_import_flow({pyc: stale}), sandbox) == "compiled from source"


def test_runs_carry_the_bytecode_of_the_modules_they_import(squares_task: CodeTask) -> None:
    req = reference_request(squares_task, VerifierConfig())
    pycs = {n for n in req.files if n.startswith("__pycache__/")}
    imported = ("codec", "call_driver", "gen", "contract", "plain")
    assert pycs == {
        f"__pycache__/{SCRIPT_NAMES[m][:-3]}.{sys.implementation.cache_tag}.pyc" for m in imported
    }
    assert all(isinstance(req.files[n], bytes) for n in pycs)
    assert files("codec")["_sipdo_codec.py"] == script("codec")


# The reference loops on half of its domain; its tests stay on the other half.
HALF_LOOPING = CodeTask(
    prompt="",
    entry_point="half",
    reference_solution=(
        "def half(n: int) -> int:\n    while n % 2:\n        pass\n    return n // 2\n"
    ),
    tests=(
        "from solution import half\n\n"
        "def test_even():\n    assert half(4) == 2\n    assert half(10) == 5\n"
    ),
)


@pytest.mark.parametrize("full", [1, 2])
def test_after_the_full_timeouts_the_reference_gets_a_shorter_budget(
    process_sandbox: Sandbox, full: int
) -> None:
    config = VerifierConfig(
        n_standard=40,
        n_extended=0,
        reference_call_budget_s=1.0,
        reference_short_budget_s=0.05,
        reference_full_timeouts=full,
    )
    req = reference_request(HALF_LOOPING, config)
    out = parse(req, process_sandbox.run(req.files, ["python", req.script], stdin=req.stdin()))
    assert out.done, out.result.stderr[-2000:]
    ran = read_reference(out)
    # That many odd inputs ran out the whole budget; the later ones the short one.
    assert ran.dropped["timeout"] == full
    assert ran.dropped["timeout (shortened budget)"] > 0
    # The even inputs after them were still answered and kept for comparison.
    assert len(ran.group("std")) >= 5
    assert not ran.failing_tests
    never = read_reference(
        parse(
            req := reference_request(HALF_LOOPING, replace(config, reference_full_timeouts=100)),
            process_sandbox.run(req.files, ["python", req.script], stdin=req.stdin()),
        )
    )
    assert "timeout (shortened budget)" not in never.dropped
    assert (
        never.dropped["timeout"]
        == ran.dropped["timeout"] + ran.dropped["timeout (shortened budget)"]
    )


def test_solutions_are_graded_the_same_after_the_references_timeouts(
    process_sandbox: Sandbox,
) -> None:
    config = VerifierConfig(
        n_standard=40, n_extended=0, reference_call_budget_s=1.0, reference_short_budget_s=0.05
    )
    same = "def half(n: int) -> int:\n    assert n % 2 == 0\n    return n >> 1\n"
    wrong = "def half(n: int) -> int:\n    return n // 2 + (n > 10)\n"
    assert verify_solution(HALF_LOOPING, same, sandbox=process_sandbox, config=config).passed
    assert not verify_solution(HALF_LOOPING, wrong, sandbox=process_sandbox, config=config).passed
