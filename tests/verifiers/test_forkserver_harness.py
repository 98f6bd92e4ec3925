"""The verifier harness runs as fork-server children, and no run leaks into the next verdict.

A driver forked from a sandbox's fork server finds pytest and Hypothesis
imported and ``PYTHONHASHSEED=0`` already in force, so it starts no
interpreter of its own; a fresh run re-executes once to get the same seed.
Either way a driver sees the same hashes and runs pytest without plugin
autoloading. Then a task whose code pollutes everything a shared process
would keep (``sys.modules``, builtins, pytest and Hypothesis internals, a
Hypothesis settings profile and example database, ``random``) is verified,
and the verdicts of a sound task, a wrong and a right solution afterwards
are the ones given before it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from sipdo.sandbox import Sandbox
from sipdo.sandbox.process import ProcessSandbox
from sipdo.verifiers import CodeTask, Verdict, VerifierConfig, verify_solution, verify_task
from sipdo.verifiers.harness import files

PROBE = """
import sys
PRELOADED = "hypothesis" in sys.modules and "_pytest.main" in sys.modules
import _sipdo_codec
request, emit = _sipdo_codec.boot()
import os
emit({
    "preloaded": PRELOADED,
    "hash": hash("sipdo"),
    "autoload_off": os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"),
    "randomized": sys.flags.hash_randomization,
})
"""

POLLUTER = '''
import builtins, random, sys
import hypothesis, pytest, _pytest.runner, _pytest.python
import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.configuration import storage_directory
from hypothesis.database import DirectoryBasedExampleDatabase

settings.register_profile("evil", max_examples=1, derandomize=False, deadline=1)
settings.load_profile("evil")
DirectoryBasedExampleDatabase(str(storage_directory("examples"))).save(b"k" * 20, b"\\x00")
st.integers = lambda *a, **k: st.just(0)
st.lists = lambda *a, **k: st.just([])
hypothesis.given = lambda *a, **k: (lambda f: (lambda *x, **y: None))
pytest.main = lambda *a, **k: 0
_pytest.runner.runtestprotocol = lambda *a, **k: []
_pytest.python.Function.runtest = lambda self: None
for name in list(sys.modules):
    if name.startswith("_sipdo"):
        sys.modules[name] = None
builtins.sorted = lambda xs, **k: list(xs)
builtins.sum = lambda xs, start=0: 0
random.seed = lambda *a, **k: None
random.random = lambda: 0.5
sys.path.insert(0, "/tmp")


def sum_of_squares(xs: list[int]) -> int:
    """Sum of the squares of the even numbers in xs."""
    return sum(x * x for x in xs if x % 2 == 0)
'''

# Every check runs, on fewer inputs and mutants (seconds, not tens of them).
LIGHT = VerifierConfig(n_standard=15, n_extended=15, max_mutants=8)
WRONG = "def sum_of_squares(xs):\n    return sum(x * x for x in xs)\n"
RIGHT = "def sum_of_squares(xs):\n    return sum(x * x for x in xs if x % 2 == 0)\n"


def _probe(sandbox: Sandbox) -> dict[str, object]:
    result = sandbox.run(
        {**files("codec"), "probe.py": PROBE}, ["python", "probe.py"], stdin='{"nonce": "n"}'
    )
    assert result.ok, result.stderr
    [line] = [x for x in result.stdout.split("\n") if x.startswith("\x1en ")]
    record: dict[str, object] = json.loads(line[3:])
    return record


def _view(verdict: Verdict) -> tuple[object, ...]:
    """Everything a verdict says, without timings."""
    checks = [(c.name, c.passed, c.score, c.detail) for c in verdict.checks]
    return verdict.passed, verdict.score, verdict.feedback, checks, verdict.counterexample


@pytest.fixture(scope="module")
def process_fresh() -> Iterator[ProcessSandbox]:
    with ProcessSandbox(mode="fresh") as sandbox:
        yield sandbox


def test_drivers_run_on_the_fork_server_with_the_fresh_runs_hash_seed(
    process_sandbox: ProcessSandbox, process_fresh: ProcessSandbox
) -> None:
    assert process_sandbox.mode == "forkserver"
    assert process_sandbox.wait_ready()
    forked, fresh = _probe(process_sandbox), _probe(process_fresh)
    assert forked["preloaded"] is True  # no interpreter started: the server's imports
    assert fresh["preloaded"] is False  # re-executed with the seed
    assert forked["hash"] == fresh["hash"]
    assert forked["randomized"] == fresh["randomized"] == 0
    assert forked["autoload_off"] == fresh["autoload_off"] == "1"


@pytest.mark.docker
def test_docker_drivers_run_on_the_fork_server(
    docker_sandbox: Sandbox, process_fresh: ProcessSandbox
) -> None:
    docker_sandbox.prewarm(count=1)  # type: ignore[attr-defined]
    forked = _probe(docker_sandbox)
    assert forked["preloaded"] is True
    assert forked["randomized"] == 0
    assert forked["autoload_off"] == "1"
    assert forked["hash"] == _probe(process_fresh)["hash"]  # the same seed as every backend


def test_a_polluting_task_changes_no_later_verdict(
    sandbox: Sandbox, squares_task: CodeTask
) -> None:
    if isinstance(sandbox, ProcessSandbox):
        assert sandbox.wait_ready()
    before = [
        verify_task(squares_task, sandbox=sandbox, config=LIGHT),
        verify_solution(squares_task, WRONG, sandbox=sandbox, config=LIGHT),
        verify_solution(squares_task, RIGHT, sandbox=sandbox, config=LIGHT),
    ]
    assert [v.passed for v in before[1:]] == [False, True]
    hostile = squares_task.model_copy(update={"reference_solution": POLLUTER})
    polluted = verify_task(hostile, sandbox=sandbox, config=LIGHT)
    assert not polluted.passed  # its own verdict: the pollution broke its own runs
    after = [
        verify_task(squares_task, sandbox=sandbox, config=LIGHT),
        verify_solution(squares_task, WRONG, sandbox=sandbox, config=LIGHT),
        verify_solution(squares_task, RIGHT, sandbox=sandbox, config=LIGHT),
    ]
    assert [_view(v) for v in after] == [_view(v) for v in before]


def test_fork_server_and_fresh_runs_give_the_same_verdicts(
    process_sandbox: ProcessSandbox, process_fresh: ProcessSandbox, squares_task: CodeTask
) -> None:
    assert process_sandbox.wait_ready()
    forked = verify_task(squares_task, sandbox=process_sandbox, config=LIGHT)
    fresh = verify_task(squares_task, sandbox=process_fresh, config=LIGHT)
    assert _view(forked) == _view(fresh)
