"""Where one forked, jailed run of ``ProcessSandbox`` spends its time, stage by stage.

Runs HumanEval's first canonical solution with its tests ``--runs`` times in
``ProcessSandbox(mode="forkserver")``, alternating with a bare ``python``
subprocess of the same program (the same load for both), and prints, per
stage boundary, the median time since the previous boundary (wall) and the
CPU the process that marks it spent since its previous mark::

    python benchmarks/forkserver_stages.py [--runs 100]

The stages are marked by wrapping the sandbox's own functions: in this
process for the caller side, and in the fork server, which this script
starts with a boot line that wraps its functions first. Every process of a
run writes its marks into one shared memory file (a ``MAP_SHARED`` mapping
survives the fork, the jail's ``pivot_root`` and the drop to the run's uid).
Work the kernel defers to its own threads (namespace and cgroup teardown)
shows in no process's CPU time here; neither does the work a run's spare
did before its job came (``forkserver.Spare``), except in the run
processes' total (``RUSAGE_CHILDREN``).

Measured 2026-12-05 (100 runs, load 2.0-3.3 on 2 cores): p50 40 ms before
spares (12 ms of it joining the cgroup), 15 ms after, against 44-46 ms for
the bare ``python``.
"""

from __future__ import annotations

import argparse
import functools
import mmap
import os
import resource
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

STAGES = (
    ("caller", "run() called"),
    ("caller", "_execute entered"),
    ("caller", "spare taken"),
    ("pid2", "job received, jail completed"),
    ("caller", "job sent (run pickled)"),
    ("pid2", "jailed, program starts"),
    ("pid2", "program body done"),
    ("pid2", "shutdown done"),
    ("pid1", "program reaped"),
    ("server", "woken to reap, sends status"),
    ("caller", "output at EOF"),
    ("caller", "status received"),
    ("caller", "run() returned"),
)
INDEX = {stage: i for i, (_, stage) in enumerate(STAGES)}
CHILDREN_CPU = len(STAGES)  # the server's RUSAGE_CHILDREN after a reap
SLOT = struct.Struct("qq")
_table: mmap.mmap | None = None


def _open_table(path: str) -> mmap.mmap:
    fd = os.open(path, os.O_RDWR)
    try:
        return mmap.mmap(fd, SLOT.size * (len(STAGES) + 1))
    finally:
        os.close(fd)


def mark(stage: str, cpu_ns: int | None = None) -> None:
    if _table is not None:
        cpu = time.process_time_ns() if cpu_ns is None else cpu_ns
        SLOT.pack_into(_table, INDEX[stage] * SLOT.size, time.monotonic_ns(), cpu)


def around(
    owner: Any,
    name: str,
    before: str | None = None,
    after: str | None = None,
    mark_: Callable[[str], None] = mark,
) -> None:
    """Wrap ``owner.name`` so that it marks ``before`` on entry and ``after`` on return."""
    real = getattr(owner, name)

    @functools.wraps(real)
    def wrapped(*args: Any, **kw: Any) -> Any:
        if before:
            mark_(before)
        result = real(*args, **kw)
        if after:
            mark_(after)
        return result

    setattr(owner, name, wrapped)


def instrument_server(path: str) -> None:
    """In the fork server, before it serves: wrap the server's and the jail's functions."""
    global _table
    _table = _open_table(path)
    from sipdo.sandbox import _jail, _procserver, _zygote

    around(_jail.Jail, "start", before="job received, jail completed")
    around(_zygote, "run_python", before="jailed, program starts")
    around(_zygote, "_shutdown", before="program body done", after="shutdown done")

    real_waitpid = os.waitpid

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        result = real_waitpid(pid, options)
        if result[0] > 0 and options == 0 and os.getpid() == 1:
            mark("program reaped")
        return result

    os.waitpid = waitpid
    real_reap = _procserver.Server.reap

    def reap(self: Any) -> None:
        mark("woken to reap, sends status")  # also for spares given up (none in this loop)
        real_reap(self)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = int((usage.ru_utime + usage.ru_stime) * 1e9)
        SLOT.pack_into(_table, CHILDREN_CPU * SLOT.size, 0, cpu)

    _procserver.Server.reap = reap  # type: ignore[method-assign]


def instrument_caller(path: str) -> None:
    """In this process: wrap the caller's side, and make the fork server instrument itself."""
    global _table
    _table = _open_table(path)
    from sipdo.sandbox import forkserver, process
    from sipdo.sandbox.base import Sandbox

    here = os.path.dirname(os.path.abspath(__file__))
    forkserver._BOOT = (  # type: ignore[misc]
        f"import sys; sys.path.insert(0, sys.argv[3]); sys.path.insert(0, {here!r}); "
        f"import forkserver_stages; forkserver_stages.instrument_server({path!r}); "
        "from sipdo.sandbox._procserver import main; del sys.path[:3]; "
        "main(int(sys.argv[1]), sys.argv[2])"
    )
    clock = time.thread_time_ns  # the caller's own thread (not the namespace pool's)

    def caller_mark(stage: str) -> None:
        mark(stage, clock())

    for owner, name, before, after in (
        (Sandbox, "run", "run() called", "run() returned"),
        (process.ProcessSandbox, "_execute", "_execute entered", None),
        (forkserver.ForkServer, "take", None, "spare taken"),
        (forkserver.Spare, "start", None, "job sent (run pickled)"),
        (process, "pump", None, "output at EOF"),
        (process._Forked, "wait", None, "status received"),
    ):
        around(owner, name, before, after, caller_mark)


def read_table() -> list[tuple[int, int]]:
    assert _table is not None
    return [SLOT.unpack_from(_table, i * SLOT.size) for i in range(len(STAGES) + 1)]


def clear_table() -> None:
    assert _table is not None
    children = read_table()[CHILDREN_CPU]
    _table[:] = bytes(len(_table))
    SLOT.pack_into(_table, CHILDREN_CPU * SLOT.size, *children)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.NamedTemporaryFile(prefix="sipdo-stages-", dir="/dev/shm") as shm:
        shm.truncate(SLOT.size * (len(STAGES) + 1))
        instrument_caller(shm.name)
        return measure(args.runs)


def measure(runs: int) -> int:
    from sandbox import LIMITS, bare, humaneval_programs

    from sipdo.sandbox.process import ProcessSandbox

    (program,) = humaneval_programs(1)
    files, command = {"main.py": program}, ["python", "main.py"]
    load = os.getloadavg()
    rows: list[list[tuple[int, int]]] = []
    children: list[int] = []
    bare_ms: list[float] = []
    with ProcessSandbox(mode="forkserver", max_concurrency=1) as sandbox:
        if not sandbox.wait_ready() or not sandbox.namespaces:
            print("needs a jailed fork server (root on Linux)")
            return 1
        for _ in range(3):
            sandbox.run(files, command, limits=LIMITS)
        last = read_table()[CHILDREN_CPU][1]
        for _ in range(runs):
            clear_table()
            assert sandbox.run(files, command, limits=LIMITS).ok
            table = read_table()
            rows.append(table[:CHILDREN_CPU])
            children.append(table[CHILDREN_CPU][1] - last)
            last = table[CHILDREN_CPU][1]
            t0 = time.perf_counter()
            assert bare(program)
            bare_ms.append((time.perf_counter() - t0) * 1000)
    after = os.getloadavg()
    report(rows, children, bare_ms, load, after)
    return 0


def report(
    rows: list[list[tuple[int, int]]],
    children: list[int],
    bare_ms: list[float],
    load: tuple[float, float, float],
    after: tuple[float, float, float],
) -> None:
    ms = 1e-6
    print(
        f"{len(rows)} runs, {os.cpu_count()} cores, load {load[0]:.1f} before, "
        f"{after[0]:.1f} after\n"
    )
    print("| # | process | stage reached | at ms (p50) | + ms (p50) | CPU ms (mean) |")
    print("|---|---|---|---|---|---|")
    last_cpu: dict[str, int] = {}
    for i, (who, stage) in enumerate(STAGES):
        at = [(row[i][0] - row[0][0]) * ms for row in rows]
        step = [(row[i][0] - row[i - 1][0]) * ms if i else 0.0 for row in rows]
        prev = last_cpu.get(who)
        last_cpu[who] = i
        # A forked process's first mark: its CPU since the fork; the caller's and the
        # server's first: since they started (not this run's).
        cpu = "-"
        if prev is not None or who not in ("caller", "server"):
            spent = [row[i][1] - (row[prev][1] if prev is not None else 0) for row in rows]
            cpu = f"{statistics.mean(spent) * ms:.2f}"
        print(
            f"| {i} | {who} | {stage} | {statistics.median(at):.2f} | "
            f"{statistics.median(step):.2f} | {cpu} |"
        )
    total = [(row[-1][0] - row[0][0]) * ms for row in rows]
    print(
        f"\nwhole run p50 {statistics.median(total):.1f} ms (mean {statistics.mean(total):.1f}); "
        f"bare python p50 {statistics.median(bare_ms):.1f} ms "
        f"(ratio of sums {sum(total) / sum(bare_ms):.2f}x)"
    )
    print(
        f"CPU of the run's processes (runner, PID 1, program; the server's "
        f"RUSAGE_CHILDREN): mean {statistics.mean(children) * ms:.2f} ms; the caller's "
        f"thread: mean {statistics.mean((r[-1][1] - r[0][1]) * ms for r in rows):.2f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
