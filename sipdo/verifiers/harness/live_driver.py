"""Tests-only grading in one run: the tests here, the candidate in a child (runs in the sandbox).

Tests-only grading otherwise takes two runs: the reference run records the
tests' calls, then the candidate answers them in a run of its own. Here one
run does both, with the candidate kept out of this process:

1. Before anything secret is known, this process makes itself non-dumpable
   (so no process of the run's user can ptrace it or open its ``/proc``
   memory and descriptors) and forks the *answerer*: it closes every
   descriptor but its two pipes and stderr, points stdout at stderr and
   stdin at ``/dev/null``, and waits. Told the entry point (after step 3:
   no code of the candidate runs while the tests run on the reference, so a
   candidate hogging the machine cannot make the reference time out and
   the task look broken), it imports ``solution.py`` (the candidate, the
   only task file on disk) and answers calls (``_sipdo_call.call_one``)
   that arrive on its pipe, one JSON line each way.
2. Only then is the request read from stdin: the records' nonce, the
   reference's and the tests' sources (never written to disk, so the
   candidate cannot read them), the budgets. The run's directory leaves
   ``sys.path``, so nothing the candidate writes there is imported here.
3. The tests run on the reference (made in memory as module ``solution``),
   recording the calls they make; the reference answers each one again
   (``call_one``), which gives the cases and their expected records, as the
   reference run does. A reference that fails its own tests ends the run.
4. The tests run again with the entry point answered by the answerer: the
   arguments are encoded, sent, and the reply decoded (plain data only, as
   in the replay driver: nothing the candidate wrote runs here), each call
   with ``max(call_floor, time_factor x the reference's time)``. An input
   the reference was not asked (the candidate's answers led the tests
   elsewhere) is not compared, as in two runs (the reference is not called
   here: its own recursive calls would reach the candidate). An answerer
   that does not reply in time, dies or replies garbage gives no answer,
   now and after.

The host compares the answers with the reference's records and reads the
tests' outcomes, as for the two runs. Only plain test modules (``_sipdo_plain``)
come here; pytest needs its test files on disk.

Records: ``{"rtest", "o", "msg"}`` and ``{"rexit"}`` (the tests on the
reference), ``{"g": "test", "in", "r", "post", "dt"}`` per case, ``{"import"}``
(the candidate did not load), ``{"a", "r", "post", "dt"}`` per answer,
``{"test", "o", "msg"}``, ``{"exit"}``, ``{"done"}``, or ``{"unsafe"}`` when
this process cannot be made non-dumpable, or when that would not keep the
candidate out (the run holds ``CAP_SYS_PTRACE``: root outside a jail); the
host then grades in two runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sipdo.verifiers.harness import call_driver as calls
    from sipdo.verifiers.harness import codec, plain
    from sipdo.verifiers.harness import replay_driver as replay
else:
    import _sipdo_call as calls
    import _sipdo_codec as codec
    import _sipdo_plain as plain
    import _sipdo_replay as replay

_PR_SET_DUMPABLE = 4
MARGIN_S = 2.0  # past a call's budget, how long to wait for the answerer's reply
MAX_TIMEOUTS = 2  # as the call driver: after two timeouts the rest are not asked
MAX_REPLY = 64 << 20


class Answerer:
    """The candidate's process, seen from here: a pid and two pipes."""

    def __init__(self) -> None:
        self.pid = 0
        self.send_fd = self.recv_fd = -1
        self.alive = False
        self.timeouts = 0
        self.pending = b""
        self.unsafe = ""

    def start(self) -> None:
        """Become non-dumpable, then fork the answerer (it never returns)."""
        why = tracer()
        if why:
            self.unsafe = why
            return
        try:
            import ctypes  # preloaded by the fork servers (``_zygote.PRELOAD``)

            # ``pythonapi`` resolves every symbol of the process, libc's ``prctl`` included,
            # without the cost of loading a library object per run.
            if ctypes.pythonapi.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
                self.unsafe = "prctl(PR_SET_DUMPABLE, 0) failed"
                return
        except Exception as exc:  # no ctypes or no prctl: the host grades in two runs
            self.unsafe = f"cannot make the run non-dumpable: {exc!r}"
            return
        child_in, parent_out = os.pipe()  # this process writes, the answerer reads
        parent_in, child_out = os.pipe()  # the answerer writes, this process reads
        pid = os.fork()
        if pid == 0:
            serve(child_in, child_out)
        os.close(child_in)
        os.close(child_out)
        self.pid, self.send_fd, self.recv_fd, self.alive = pid, parent_out, parent_in, True

    def announce(self, entry: str) -> None:
        """Tell the answerer the entry point: it loads the candidate then."""
        self.send({"entry": entry})

    def ready(self, wait_s: float) -> str | None:
        """None once the answerer has loaded the candidate (within ``wait_s``), else why
        it has not."""
        reply = self.ask(None, wait_s)
        if reply is None:
            return "the candidate's process did not start"
        if "import" in reply:
            self.stop()
            return str(reply["import"])
        return None

    def send(self, message: dict[str, Any]) -> None:
        if self.alive:
            try:
                _write_line(self.send_fd, message)
            except OSError:  # the answerer is gone (EPIPE)
                self.stop()

    def ask(self, message: dict[str, Any] | None, wait_s: float) -> dict[str, Any] | None:
        """One request (None: none, only the reply to the last one) and its reply, or None
        (and the answerer stopped) if there is none."""
        if message is not None:
            self.send(message)
        if not self.alive:
            return None
        try:
            line = self._line(wait_s)
            reply = json.loads(line) if line is not None else None
        except (OSError, ValueError):
            reply = None
        if not isinstance(reply, dict):
            self.stop()
            return None
        return reply

    def _line(self, wait_s: float) -> bytes | None:
        import time

        deadline = time.monotonic() + wait_s
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.recv_fd], [], [], left)[0]:
                return None
            chunk = os.read(self.recv_fd, 1 << 16)
            if not chunk or len(self.pending) > MAX_REPLY:
                return None
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line

    def stop(self) -> None:
        """Kill the answerer; not waited for (its address space takes milliseconds to go),
        the sandbox reaps it and ends whatever is left of the run."""
        if self.pid and self.alive:
            self.alive = False
            for fd in (self.send_fd, self.recv_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)


CAP_SYS_PTRACE = 19


def tracer() -> str:
    """Why a process of this run could read this one's memory despite it being non-dumpable
    (it holds, or may raise, ``CAP_SYS_PTRACE``: root outside a jail), or ``""``."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            caps = {
                k: int(v, 16)
                for k, _, v in (line.partition(":\t") for line in handle)
                if k in ("CapPrm", "CapEff")
            }
    except (OSError, ValueError) as exc:
        return f"cannot read this run's capabilities: {exc!r}"
    if len(caps) < 2:
        return "cannot read this run's capabilities"
    if any(c >> CAP_SYS_PTRACE & 1 for c in caps.values()):
        return "the run may trace other processes (CAP_SYS_PTRACE)"
    return ""


def serve(recv_fd: int, send_fd: int) -> None:
    """The answerer: load the candidate, answer calls until the pipe closes (never returns)."""
    code = 0
    try:
        keep = {recv_fd, send_fd, 2}
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(2, 1)
        for fd in _open_fds():
            if fd not in keep and fd > 2:
                with contextlib.suppress(OSError):
                    os.close(fd)
        reader = os.fdopen(recv_fd, "rb")
        first = json.loads(reader.readline() or b"{}")
        try:
            random.seed(0)
            import importlib

            fn = getattr(importlib.import_module("solution"), first["entry"])
        except BaseException as exc:  # import errors, SystemExit, a missing entry point
            _write_line(send_fd, {"import": calls._describe(exc)})
            os._exit(0)
        _write_line(send_fd, {"ready": True})
        for line in reader:
            request = json.loads(line)
            record = calls.call_one(fn, request["in"], float(request["budget"]))
            _write_line(send_fd, record)
    except BaseException as exc:  # the pipe closed, or this harness failed: say why
        code = 1
        with contextlib.suppress(OSError):
            os.write(2, f"sipdo live answerer: {exc!r}\n".encode())
    os._exit(code)


def _open_fds() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 1024))


def _write_line(fd: int, record: dict[str, Any]) -> None:
    data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


class Live(replay.Replayer):
    """The entry point answered by the answerer; each answer recorded, then replayed."""

    def __init__(
        self, module: Any, impl: Any, answerer: Answerer, request: dict[str, Any], emit: Any
    ):
        super().__init__(module, [], emit)
        self.impl, self.answerer, self.request = impl, answerer, request
        self.expected: dict[str, dict[str, Any]] = {}

    def case(self, item: dict[str, Any]) -> dict[str, Any]:
        """The reference's record for ``item`` (made and emitted at its first sight)."""
        key = codec.key(item)
        if key not in self.expected:
            record = calls.call_one(self.impl, item, float(self.request["call_budget"]))
            self.expected[key] = record
            self.emit({"g": "test", "in": item, **record})
        return self.expected[key]

    def missing(self, item: dict[str, Any], key: str) -> dict[str, Any]:
        """The candidate's answer to a call it was not asked yet (no table here)."""
        return self.answer(item, key)

    def answer(self, item: dict[str, Any], key: str) -> dict[str, Any]:
        # An input the tests did not pass the reference (the candidate's answers led them
        # elsewhere) is not compared, as in two runs: it gets the floor budget.
        expected = self.expected.get(key, {})
        budget = max(
            float(self.request["call_floor"]),
            float(self.request["time_factor"]) * float(expected.get("dt", 0.0)),
        )
        record: dict[str, Any] | None = None
        if self.answerer.timeouts < MAX_TIMEOUTS:
            reply = self.answerer.ask({"in": item, "budget": budget}, budget + MARGIN_S)
            if reply is not None and isinstance(reply.get("r"), dict):
                record = {
                    "r": reply["r"],
                    "post": reply.get("post") if isinstance(reply.get("post"), list) else [],
                    "dt": reply.get("dt", 0.0),
                }
        if record is None or "timeout" in record["r"]:
            self.answerer.timeouts += 1
            record = {"r": {"timeout": True}, "post": [], "dt": budget}
        self.emit({"a": key, **record})
        return record


def main() -> None:
    answerer = Answerer()
    request, emit = codec.boot(before_request=answerer.start)
    if answerer.unsafe:
        emit({"unsafe": answerer.unsafe})
        emit({"done": True})
        return
    here = {"", ".", os.getcwd()}
    sys.path[:] = [p for p in sys.path if p not in here and os.path.abspath(p) != os.getcwd()]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    entry, tests_file = request["entry"], request["tests_file"]
    cwd = os.getcwd()
    random.seed(0)
    reference = plain.module_from_source(
        "solution", os.path.join(cwd, "solution.py"), request["reference"]
    )
    impl = getattr(reference, entry)

    def report_to(kind: str) -> Any:
        def report(test: str, when: str, outcome: str, msg: str) -> None:
            emit({kind: test, "o": outcome, "msg": msg})

        return report

    # 1. The tests on the reference: the cases, and whether the task is sound.
    recorder = calls.Recording(impl, float(request["call_budget"]))
    setattr(reference, entry, recorder)
    code = plain.run(
        tests_file, lambda: random.seed(0), report_to("rtest"), source=request["tests"]
    )
    setattr(reference, entry, impl)
    emit({"rexit": code})
    if code not in (0, 5):
        answerer.stop()  # a broken task: the candidate is never asked
        emit({"done": True})
        return
    live = Live(reference, impl, answerer, request, emit)
    for item in recorder.inputs:
        live.case(item)
    # 2. The same tests, the entry point answered by the candidate's process.
    # Only now does any of the candidate's code run: nothing it does (a busy loop, a fork
    # bomb) can slow the tests on the reference into a failure that would blame the task.
    answerer.announce(entry)
    problem = answerer.ready(float(request["import_budget"]))
    if problem is not None:
        emit({"import": problem})
    else:
        sys.modules.pop(os.path.splitext(os.path.basename(tests_file))[0], None)
        setattr(reference, entry, live)
        code = plain.run(
            tests_file, lambda: random.seed(0), report_to("test"), source=request["tests"]
        )
        # Cases the tests did not reach this time (an earlier answer led them elsewhere) are
        # answered too: the candidate answers every case, as in its own run.
        for item in recorder.inputs:
            key = codec.key(item)
            if key not in live.table:
                live.table[key] = live.answer(item, key)
        emit({"exit": code})
    answerer.stop()
    emit({"done": True})


if __name__ == "__main__":
    main()
