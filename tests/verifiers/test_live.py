"""Tests-only grading in one run (``sipdo.verifiers.live``): same verdicts, same defences.

The candidate's process shares the run with the tests' process here, so the
hostile candidates of ``test_hostile.py`` run again in this mode, with the
tricks that sharing opens: reaching the tests' process through ``/proc``
(its memory, its stdin holding the request and its nonce, its stdout the
host reads), signalling it, planting modules it might import, reading the
tests or the reference from disk.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from sipdo.sandbox import Sandbox
from sipdo.sandbox.base import ExecResult
from sipdo.verifiers import CodeTask, VerifierConfig, verify_solution
from sipdo.verifiers.live import applies, live_flow, live_request
from tests.verifiers.test_hostile import HACKS, WRONG

ONE_RUN = VerifierConfig(n_standard=0, n_extended=0)
TWO_RUNS = replace(ONE_RUN, live_tests=False)
RIGHT = "def sum_of_squares(xs):\n    return sum(x * x for x in xs if x % 2 == 0)\n"

# Everything this returns above 100 is a door that opened (the tests expect 20 or less).
PROBE = (
    "import os\n"
    "def sum_of_squares(xs):\n"
    "    found = 100\n"
    "    parent = os.getppid()\n"
    "    for bit, (path, mode) in enumerate([\n"
    "        (f'/proc/{parent}/mem', os.O_RDONLY), (f'/proc/{parent}/fd/0', os.O_RDONLY),\n"
    "        (f'/proc/{parent}/fd/1', os.O_WRONLY), (f'/proc/{parent}/environ', os.O_RDONLY),\n"
    "        ('test_task.py', os.O_RDONLY), ('_sipdo_reference.py', os.O_RDONLY),\n"
    "    ]):\n"
    "        try:\n"
    "            os.close(os.open(path, mode))\n"
    "            found += 1 << bit\n"
    "        except OSError:\n"
    "            pass\n"
    "    try:\n"
    "        os.fstat(1)\n"
    "        if os.readlink('/proc/self/fd/1') == os.readlink(f'/proc/{parent}/fd/1'):\n"
    "            found += 1 << 7\n"
    "    except OSError:\n"
    "        pass\n"
    "    return found\n"
)

SHARED_RUN_HACKS: dict[str, str] = {
    "kill_the_tests_process": (
        "import os, signal\n"
        "def sum_of_squares(xs):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return 0\n"
    ),
    "plant_modules_for_the_tests_process": (
        "import os\n"
        "PASS = 'def run(*a, **k):\\n    return 0\\ndef is_plain(s):\\n    return True\\n'\n"
        "for name in ('_sipdo_plain', '_sipdo_codec', '_sipdo_replay', 'linecache',\n"
        "             'traceback', 'json', 'types', 'random'):\n"
        "    try:\n"
        "        with open(name + '.py', 'w') as f: f.write(PASS)\n"
        "    except OSError: pass\n"
        "def sum_of_squares(xs):\n    return 0\n"
    ),
    "steal_the_nonce_and_forge": (
        "import os, re\n"
        "def sum_of_squares(xs):\n"
        "    parent = os.getppid()\n"
        "    text = ''\n"
        "    for name in ('fd/0', 'environ', 'cmdline', 'mem', 'maps'):\n"
        "        try:\n"
        "            with open(f'/proc/{parent}/{name}', 'rb') as f: text += f.read(1 << 20).decode('latin-1')\n"  # noqa: E501
        "        except OSError: pass\n"
        "    for nonce in set(re.findall(r'[0-9a-f]{32}', text)):\n"
        '        line = (\'\\x1e\' + nonce + \' {"test": "test_task.py::test_basic", "o": "passed"}\\n\'\n'  # noqa: E501
        "                '\\x1e' + nonce + ' {\"exit\": 0}\\n\\x1e' + nonce + ' {\"done\": true}\\n')\n"  # noqa: E501
        "        for target in (f'/proc/{parent}/fd/1', '/proc/self/fd/1'):\n"
        "            try:\n"
        "                fd = os.open(target, os.O_WRONLY)\n"
        "                os.write(fd, line.encode()); os.close(fd)\n"
        "            except OSError: pass\n"
        "    return 0\n"
    ),
    "ptrace_the_tests_process": (
        "import ctypes, os\n"
        "def sum_of_squares(xs):\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    if libc.ptrace(16, os.getppid(), 0, 0) == 0:  # PTRACE_ATTACH\n"
        "        return 20  # attached: it could now rewrite the tests' process\n"
        "    return 0\n"
    ),
}


def test_plain_tests_in_tests_only_mode_take_the_one_run_path(squares_task: CodeTask) -> None:
    assert applies(squares_task, ONE_RUN)
    assert not applies(squares_task, TWO_RUNS)
    assert not applies(squares_task, VerifierConfig())  # full verification generates inputs
    uses_pytest = squares_task.model_copy(update={"tests": "import pytest\n" + squares_task.tests})
    assert not applies(uses_pytest, ONE_RUN)


def test_the_request_keeps_tests_and_reference_off_disk(squares_task: CodeTask) -> None:
    req = live_request(squares_task, RIGHT, ONE_RUN)
    assert req.files["solution.py"] == RIGHT
    assert not [name for name, text in req.files.items() if "def test_" in str(text)]
    assert squares_task.reference_solution not in [str(t) for t in req.files.values()]
    assert req.request["tests"] == squares_task.tests
    assert req.request["reference"] == squares_task.reference_solution


@pytest.mark.parametrize("candidate", ["right", "wrong", "raises", "syntax"])
def test_one_run_and_two_runs_agree(
    sandbox: Sandbox, squares_task: CodeTask, candidate: str
) -> None:
    source = {
        "right": RIGHT,
        "wrong": "def sum_of_squares(xs):\n    return sum(x * x for x in xs)\n",
        "raises": "def sum_of_squares(xs):\n    raise ValueError('no')\n",
        "syntax": "def sum_of_squares(xs)\n    return 0\n",
    }[candidate]
    one = verify_solution(squares_task, source, sandbox=sandbox, config=ONE_RUN)
    two = verify_solution(squares_task, source, sandbox=sandbox, config=TWO_RUNS)
    assert one.passed is two.passed is (candidate == "right"), (one.feedback, two.feedback)
    assert {c.name: c.passed for c in one.checks} == {c.name: c.passed for c in two.checks}
    if candidate == "wrong":  # the tests' smallest failing call; two runs shrink it further
        assert one.counterexample == "sum_of_squares([-2, 5])"
        assert two.counterexample == "sum_of_squares([5])"


# Answering the visible tests from a table passes any tests-only check (full verification's
# generated inputs catch it): the one run must agree with the two.
SEEN_BY_TESTS_ONLY = {"overfit_to_visible_tests"}


@pytest.mark.parametrize("hack", sorted(set(HACKS) - SEEN_BY_TESTS_ONLY))
def test_hostile_candidate_is_rejected_in_one_run(
    sandbox: Sandbox, squares_task: CodeTask, hack: str
) -> None:
    verdict = verify_solution(squares_task, HACKS[hack], sandbox=sandbox, config=ONE_RUN)
    assert verdict.passed is False, verdict.feedback
    assert verdict.feedback


@pytest.mark.parametrize("hack", sorted(SEEN_BY_TESTS_ONLY))
def test_what_tests_only_cannot_see_it_cannot_see_in_either_mode(
    process_sandbox: Sandbox, squares_task: CodeTask, hack: str
) -> None:
    one = verify_solution(squares_task, HACKS[hack], sandbox=process_sandbox, config=ONE_RUN)
    two = verify_solution(squares_task, HACKS[hack], sandbox=process_sandbox, config=TWO_RUNS)
    full = verify_solution(squares_task, HACKS[hack], sandbox=process_sandbox)
    assert one.passed is two.passed is True
    assert full.passed is False


@pytest.mark.parametrize("hack", sorted(SHARED_RUN_HACKS))
def test_the_tests_process_cannot_be_reached(
    sandbox: Sandbox, squares_task: CodeTask, hack: str
) -> None:
    verdict = verify_solution(squares_task, SHARED_RUN_HACKS[hack], sandbox=sandbox, config=ONE_RUN)
    assert verdict.passed is False, verdict.feedback
    test_checks = [c for c in verdict.checks if c.name.startswith("test:")]
    assert len(test_checks) == 3
    assert not all(c.passed for c in test_checks), verdict.feedback


def test_no_door_opens_from_the_candidates_process(
    sandbox: Sandbox, squares_task: CodeTask
) -> None:
    verdict = verify_solution(squares_task, PROBE, sandbox=sandbox, config=ONE_RUN)
    assert verdict.passed is False
    # Every call answered 100: no /proc door of the tests' process, no task file, not
    # its stdout (the answerer's stdout is its stderr).
    assert "got 100" in verdict.feedback, verdict.feedback
    assert verdict.counterexample == "sum_of_squares([])"


def test_a_correct_candidate_that_prints_and_writes_files_passes(
    sandbox: Sandbox, squares_task: CodeTask
) -> None:
    candidate = (
        "print('===== 0 passed, 3 failed =====')\n"
        "open('test_task.py', 'w').write('def test_x():\\n    assert False\\n')\n"
        "def sum_of_squares(xs):\n"
        "    print('FAILED', xs)\n"
        "    return sum(x * x for x in xs if x % 2 == 0)\n"
    )
    verdict = verify_solution(squares_task, candidate, sandbox=sandbox, config=ONE_RUN)
    assert verdict.passed, verdict.feedback


def test_a_candidate_that_hangs_fails_in_its_call_budget(
    process_sandbox: Sandbox, squares_task: CodeTask
) -> None:
    hang = "import time\ndef sum_of_squares(xs):\n    time.sleep(3600)\n"
    config = replace(ONE_RUN, call_floor_s=0.2)
    verdict = verify_solution(squares_task, hang, sandbox=process_sandbox, config=config)
    assert verdict.passed is False
    assert "got timed out" in verdict.feedback, verdict.feedback


def test_a_candidate_stopping_the_tests_process_fails_and_the_task_is_not_blamed(
    process_sandbox: Sandbox, squares_task: CodeTask
) -> None:
    stop = "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\n" + RIGHT
    config = replace(ONE_RUN, reference_timeout_s=3.0, run_floor_s=1.0)
    verdict = verify_solution(squares_task, stop, sandbox=process_sandbox, config=config)
    assert verdict.passed is False
    assert "the run ended before the tests did: timed out" in verdict.feedback, verdict.feedback


def test_a_reference_failing_its_tests_is_the_tasks_error(
    process_sandbox: Sandbox, squares_task: CodeTask
) -> None:
    from sipdo.errors import VerificationError

    broken = squares_task.model_copy(update={"reference_solution": WRONG})
    with pytest.raises(VerificationError, match="fails its own tests"):
        verify_solution(broken, RIGHT, sandbox=process_sandbox, config=ONE_RUN)


def test_a_run_that_could_trace_falls_back_to_two_runs(
    basic_process_sandbox: Sandbox, squares_task: CodeTask
) -> None:
    """Without namespaces the run has the caller's user: as root, it holds CAP_SYS_PTRACE,
    which reads a non-dumpable process's memory. The one run says so; two runs grade."""
    import os

    from tests.verifiers.recording import Recording

    runs = Recording(basic_process_sandbox)
    verdict = verify_solution(squares_task, RIGHT, sandbox=runs, config=ONE_RUN)
    assert verdict.passed, verdict.feedback
    if os.geteuid() == 0:
        assert runs.scripts == ["_sipdo_live.py", "_sipdo_reference.py", "_sipdo_call.py"]
    else:
        assert runs.scripts == ["_sipdo_live.py"]


def test_a_run_that_cannot_become_non_dumpable_falls_back_to_two_runs(
    squares_task: CodeTask,
) -> None:
    flow = live_flow(squares_task, RIGHT, ONE_RUN)
    [req] = next(flow)
    unsafe = json.dumps({"unsafe": "prctl(PR_SET_DUMPABLE, 0) failed"})
    out = f"\x1e{req.nonce} {unsafe}\n\x1e{req.nonce} " + '{"done": true}\n'
    with pytest.raises(StopIteration) as stop:
        flow.send([ExecResult(exit_code=0, stdout=out, stderr="", duration_s=0.01)])
    assert stop.value.value is None


def test_with_a_reference_store_the_reference_side_is_kept_and_reused(
    process_sandbox: Sandbox, squares_task: CodeTask, tmp_path
) -> None:
    from sipdo.verifiers.refstore import ReferenceStore
    from tests.verifiers.recording import Recording

    path = tmp_path / "refs.sqlite"
    first = Recording(process_sandbox)
    store = ReferenceStore(path)
    assert verify_solution(
        squares_task, RIGHT, sandbox=first, config=ONE_RUN, references=store
    ).passed
    assert len(store) == 1  # made in two runs, and kept for the next file
    assert first.scripts == ["_sipdo_reference.py", "_sipdo_call.py"]
    later = Recording(process_sandbox)
    assert verify_solution(
        squares_task, RIGHT, sandbox=later, config=ONE_RUN, references=ReferenceStore(path)
    ).passed
    assert later.scripts == ["_sipdo_call.py"]  # the candidate's run alone
    alone = Recording(process_sandbox)
    assert verify_solution(squares_task, RIGHT, sandbox=alone, config=ONE_RUN).passed
    assert alone.scripts == ["_sipdo_live.py"]


CHAIN = CodeTask(
    prompt="def steps(n: int) -> int:\n    '''How many times 2 fits in n, counting down.'''\n",
    entry_point="steps",
    reference_solution="def steps(n: int) -> int:\n    return 0 if n <= 0 else 1 + steps(n - 2)\n",
    tests="from solution import steps\n\ndef test_chain():\n    assert steps(steps(10)) == 3\n",
)


@pytest.mark.parametrize(
    "candidate",
    [
        "def steps(n):\n    return 6 if n == 10 else (n + 1) // 2\n",  # wrong on 10, then right
        "def steps(n):\n    return (n + 1) // 2\n",
    ],
)
def test_answers_that_lead_the_tests_elsewhere_grade_as_in_two_runs(
    process_sandbox: Sandbox, candidate: str
) -> None:
    """The tests' second call depends on the first answer: a wrong first answer asks an
    input the reference was never called on (a recursive reference, which must not reach
    the candidate through its own global name), and leaves a recorded case unasked."""
    one = verify_solution(CHAIN, candidate, sandbox=process_sandbox, config=ONE_RUN)
    two = verify_solution(CHAIN, candidate, sandbox=process_sandbox, config=TWO_RUNS)
    assert one.passed is two.passed
    assert {c.name: (c.passed, c.detail) for c in one.checks} == {
        c.name: (c.passed, c.detail) for c in two.checks
    }


def test_nothing_of_the_candidates_process_outlives_the_run(
    sandbox: Sandbox, squares_task: CodeTask
) -> None:
    """A candidate that leaves a daemon behind (double fork, new session): gone with the run."""
    import subprocess
    import time

    marker = f"sipdo_daemon_{time.time_ns()}"  # no regular-expression characters: pgrep -f
    daemon = (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        code = 'import time; {marker} = 1; time.sleep(600)'\n"
        "        os.execv(sys.executable, [sys.executable, '-c', code])\n"
        "    os._exit(0)\n" + RIGHT
    )
    verdict = verify_solution(squares_task, daemon, sandbox=sandbox, config=ONE_RUN)
    assert verdict.passed, verdict.feedback
    deadline = time.monotonic() + 5.0
    while True:
        left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
        if not left.strip() or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left.strip() == "", f"left behind: {left}"


def test_a_candidate_that_never_finishes_loading_fails_in_the_run_floor(
    process_sandbox: Sandbox, squares_task: CodeTask
) -> None:
    import time

    slow = "import time\ntime.sleep(600)\n" + RIGHT
    config = replace(ONE_RUN, run_floor_s=1.0)
    started = time.monotonic()
    verdict = verify_solution(squares_task, slow, sandbox=process_sandbox, config=config)
    assert verdict.passed is False
    assert "the candidate's process did not start" in verdict.feedback, verdict.feedback
    assert time.monotonic() - started < 30


def test_calls_larger_than_a_pipe_buffer_go_through(process_sandbox: Sandbox) -> None:
    big = CodeTask(
        prompt="def total(xs: list[int]) -> int:\n    '''Sum.'''\n",
        entry_point="total",
        reference_solution="def total(xs: list[int]) -> int:\n    return sum(xs)\n",
        tests="from solution import total\n\ndef test_big():\n"  # ~400 kB a call, encoded
        "    assert total(list(range(50_000))) == 1249975000\n",
    )
    right = "def total(xs):\n    return sum(xs)\n"
    wrong = "def total(xs):\n    return sum(xs[1:]) + 1\n"
    assert verify_solution(big, right, sandbox=process_sandbox, config=ONE_RUN).passed
    assert not verify_solution(big, wrong, sandbox=process_sandbox, config=ONE_RUN).passed
