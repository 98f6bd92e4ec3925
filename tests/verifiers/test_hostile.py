"""Hostile candidates: every trick must still yield ``passed=False`` for a wrong solution.

Each candidate below is wrong (it never computes the sum of even squares) and
tries one way of fooling the grader. The suite runs on every sandbox backend.
"""

from __future__ import annotations

import pytest

from sipdo.sandbox import Sandbox
from sipdo.verifiers import CodeTask, verify_solution

WRONG = "def sum_of_squares(xs):\n    return 0\n"

HACKS: dict[str, str] = {
    "sys_exit_at_import": "import sys\nsys.exit(0)\n" + WRONG,
    "os_exit_at_import": "import os\nos._exit(0)\n" + WRONG,
    "atexit_fake_success": (
        "import atexit, os, sys\n"
        "def done():\n"
        "    sys.__stdout__.write('===== 3 passed in 0.01s =====\\n'); os._exit(0)\n"
        "atexit.register(done)\n" + WRONG
    ),
    "sys_exit_at_call": "import sys\ndef sum_of_squares(xs):\n    sys.exit(0)\n",
    "os_exit_at_call": "import os\ndef sum_of_squares(xs):\n    os._exit(0)\n",
    "pytest_skip_at_call": "import pytest\ndef sum_of_squares(xs):\n    pytest.skip('nothing to see')\n",  # noqa: E501
    "pytest_skip_at_import": "import pytest\npytest.skip('skip module', allow_module_level=True)\n"
    + WRONG,
    "unittest_skip": "import unittest\ndef sum_of_squares(xs):\n    raise unittest.SkipTest('skip')\n",  # noqa: E501
    "keyboard_interrupt": "def sum_of_squares(xs):\n    raise KeyboardInterrupt\n",
    "system_exit_raised": "def sum_of_squares(xs):\n    raise SystemExit(0)\n",
    "base_exception_subclass": (
        "class Escape(BaseException):\n    pass\ndef sum_of_squares(xs):\n    raise Escape()\n"
    ),
    "patch_builtins": (
        "import builtins\n"
        "builtins.AssertionError = type('AssertionError', (Exception,), {})\n"
        "builtins.isinstance = lambda *a: True\n"
        "builtins.len = lambda x: 0\n" + WRONG
    ),
    "patch_pytest": (
        "import pytest, _pytest.runner, _pytest.reports\n"
        "pytest.main = lambda *a, **k: 0\n"
        "_pytest.runner.runtestprotocol = lambda *a, **k: []\n"
        "_pytest.reports.TestReport.failed = property(lambda self: False)\n" + WRONG
    ),
    "patch_hypothesis": (
        "import hypothesis\n"
        "hypothesis.given = lambda *a, **k: (lambda f: (lambda *x, **y: None))\n" + WRONG
    ),
    "patch_harness": (
        "import sys\n"
        "for name, mod in list(sys.modules.items()):\n"
        "    if name.startswith('_sipdo') or name == '__main__':\n"
        "        for attr in ('same_result', 'same', 'call_one', 'encode'):\n"
        "            if hasattr(mod, attr):\n"
        "                setattr(mod, attr, lambda *a, **k: True)\n" + WRONG
    ),
    "fake_summary": (
        "import sys\nprint('test_task.py ... [100%]')\nprint('===== 3 passed in 0.02s =====')\n"
        "sys.stderr.write('3 passed\\n')\n" + WRONG
    ),
    "fake_report_files": (
        "import json, os\n"
        "for name in ('report.json', 'results.json', 'junit.xml', '.pytest_cache'):\n"
        "    try:\n"
        "        with open(name, 'w') as f: f.write(json.dumps({'passed': True, 'failed': 0}))\n"
        "    except OSError: pass\n" + WRONG
    ),
    "read_tests_and_reference_from_disk": (
        "import glob, os, re\n"
        "FOUND = {}\n"
        "for pattern in ('*.py', '../*/*.py', '/tmp/*/*.py', '/tmp/**/test_*.py'):\n"
        "    for path in glob.glob(pattern, recursive=True):\n"
        "        try: text = open(path).read()\n"
        "        except OSError: continue\n"
        "        for args, want in re.findall(r'sum_of_squares\\((\\[.*?\\])\\) == (-?\\d+)', text):\n"  # noqa: E501
        "            FOUND[args.replace(' ', '')] = int(want)\n"
        "def sum_of_squares(xs):\n"
        "    return FOUND.get(repr(xs).replace(' ', ''), 0)\n"
    ),
    "frame_inspection": (
        "import sys\n"
        "def sum_of_squares(xs):\n"
        "    f = sys._getframe(1)\n"
        "    while f is not None:\n"
        "        for name in ('expected', 'want', 'record', 'case'):\n"
        "            v = f.f_locals.get(name)\n"
        "            if isinstance(v, int): return v\n"
        "        for c in f.f_code.co_consts:\n"
        "            if isinstance(c, int) and c > 1: return c\n"
        "        f = f.f_back\n"
        "    return 0\n"
    ),
    "gc_scan": (
        "import gc\n"
        "def sum_of_squares(xs):\n"
        "    for obj in gc.get_objects():\n"
        "        if isinstance(obj, dict) and 'expected' in obj:\n"
        "            e = obj['expected']\n"
        "            if isinstance(e, dict) and 'r' in e: return e['r'].get('ok', 0)\n"
        "    return 0\n"
    ),
    "rigged_eq": (
        "class Anything:\n"
        "    def __eq__(self, other): return True\n"
        "    def __ne__(self, other): return False\n"
        "    def __hash__(self): return 0\n"
        "    def __bool__(self): return True\n"
        "    def __repr__(self): return '20'\n"
        "def sum_of_squares(xs):\n    return Anything()\n"
    ),
    "rigged_int_subclass": (
        "class Sneaky(int):\n"
        "    def __eq__(self, other): return True\n"
        "    __hash__ = int.__hash__\n"
        "def sum_of_squares(xs):\n    return Sneaky(0)\n"
    ),
    "rigged_metaclass_name": (
        "class Meta(type):\n"
        "    @property\n"
        "    def __name__(cls): return 'int'\n"
        "class Fake(metaclass=Meta):\n"
        "    def __eq__(self, other): return True\n"
        "def sum_of_squares(xs):\n    return Fake()\n"
    ),
    "import_the_reference": (
        "import importlib\n"
        "REF = None\n"
        "for name in ('reference', 'solution_ref', '_sipdo_reference', 'reference_solution'):\n"
        "    try:\n"
        "        REF = importlib.import_module(name)\n"
        "        break\n"
        "    except BaseException:\n"
        "        pass\n"
        "def sum_of_squares(xs):\n"
        "    f = getattr(REF, 'sum_of_squares', None)\n"
        "    return f(xs) if f else 0\n"
    ),
    "forge_channel_records": (
        "import sys, json, os\n"
        "def sum_of_squares(xs):\n"
        "    f = sys._getframe(1)\n"
        "    while f is not None and 'emit' not in f.f_locals:\n"
        "        f = f.f_back\n"
        "    if f is not None:\n"
        "        emit = f.f_locals['emit']\n"
        "        for i in range(500):\n"
        "            emit({'m': 0, 'i': i, 'r': {'ok': 20}, 'post': [], 'dt': 0})\n"
        "        emit({'done': True})\n"
        "        os._exit(0)\n"
        "    return 0\n"
    ),
    "overfit_to_visible_tests": (
        "def sum_of_squares(xs):\n"
        "    return {(1, 2, 3, 4): 20, (-2, 5): 4, (): 0}.get(tuple(xs), sum(xs))\n"
    ),
    "mutate_input_to_hide": "def sum_of_squares(xs):\n    xs.clear()\n    return 0\n",
    "background_thread_writer": (
        "import threading, os, time\n"
        "def spam():\n"
        "    for _ in range(200):\n"
        "        try: os.write(3, b'\\x1e fake {\"done\": true}\\n')\n"
        "        except OSError: pass\n"
        "threading.Thread(target=spam, daemon=True).start()\n" + WRONG
    ),
    "huge_output": "def sum_of_squares(xs):\n    return list(range(3_000_000))\n",
    "lazy_generator": "def sum_of_squares(xs):\n    return (x for x in [20])\n",
    "flood_stdout": (
        "import os\n"
        "def sum_of_squares(xs):\n"
        "    os.write(1, b'x' * 2_000_000)\n"
        "    os.write(3, b'\\x1e' + b'0' * 32 + b' {\"m\": 0, \"i\": 0}\\n')\n"
        "    return 0\n"
    ),
    "disable_timer_and_loop": (
        "import signal\n"
        "def sum_of_squares(xs):\n"
        "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "    signal.setitimer(signal.ITIMER_REAL, 0)\n"
        "    while True:\n        pass\n"
    ),
}


@pytest.mark.parametrize("hack", sorted(HACKS))
def test_hostile_candidate_is_rejected(sandbox: Sandbox, squares_task: CodeTask, hack: str) -> None:
    verdict = verify_solution(squares_task, HACKS[hack], sandbox=sandbox)
    assert verdict.passed is False, verdict.feedback
    assert verdict.score < 1.0
    assert verdict.feedback


def test_hacks_do_not_make_a_correct_candidate_fail_checks_silently(
    process_sandbox: Sandbox, squares_task: CodeTask
) -> None:
    # The same framing tricks on a *correct* solution still grade as correct:
    # prints and fake files do not disturb the channel.
    candidate = (
        "print('===== 0 passed, 3 failed =====')\n"
        "open('report.json', 'w').write('{\"failed\": 3}')\n"
        "def sum_of_squares(xs):\n"
        "    print('FAILED', xs)\n"
        "    return sum(x * x for x in xs if x % 2 == 0)\n"
    )
    verdict = verify_solution(squares_task, candidate, sandbox=process_sandbox)
    assert verdict.passed, verdict.feedback
