"""Soak of ``verify_dataset`` (``sipdo verify``): 1,000 mixed rows, killed halfway, resumed.

The rows are generated (no HumanEval): sound tasks of a few templates with
their parameters varied, tasks whose reference fails its own tests,
unreadable rows (not JSON, not an object, fields missing) and hostile
references (an infinite loop, a fork bomb, an output flood, a daemon that
outlives its run, a memory hog). A worker process verifies them in tasks
mode; when half the verdicts are written it is SIGKILLed, then a second
worker resumes the file. The worker runs in a cgroup of its own, so every
process, fork server, run and per-run cgroup it makes is counted there,
whatever other programs run on the machine. Checked and printed:

- every input row has exactly one verdict, with the expected outcome for
  its kind (sound: accepted; broken reference: rejected on ``reference``;
  unreadable: ``unreadable``; hostile: a verdict);
- the resumed worker keeps the verdicts written before the kill, byte for
  byte, and writes exactly the missing ones;
- nothing is left once the resumed run ends: no process in the worker's
  cgroup, no per-run cgroup, no mount, no Docker container of its sandboxes
  (a SIGKILLed worker leaves its jail's empty root directory in /tmp and, for
  Docker, containers that the next sandbox reaps: counted);
- the worker's resident memory as the rows go by (bounded: it streams);
- rows per second of each phase, and the machine's load.

    python benchmarks/verify_soak.py [--rows 1000] [--jobs 2] [--sandbox process|docker]

The verifier runs every check on fewer inputs and mutants than its defaults
(``soak_config``): this measures the machinery, not verification depth.

Measured 2026-12-04 (``--rows 300 --jobs 2 --sandbox process``, load 15-25 on 2 cores;
the 1,000-row run did not fit the session): 300 verdicts, one per row, none unexpected
(174 accepted, 96 rejected, 30 unreadable); killed after 150 (580 s), the resumed worker
kept them byte for byte and redid exactly the other 150 (488 s); 0.28 rows/s overall.
Worker RSS 40 MB at rest, 70 MB during most of the run, 162 MB at its peak (sampled
once a second; the peaks come and go, presumably the output-flood rows, whose runs'
output is captured up to the 16 MB cap); it does not grow with the rows. Left after the
kill: 6 run cgroups (the runs in flight; the resumed worker's
factory removed them), at the end nothing (processes, run cgroups, mounts: 0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CGROUP_ROOT = "/sys/fs/cgroup"
HIERARCHIES = ("memory", "pids", "cpu")


def soak_config() -> Any:
    from sipdo.verifiers import VerifierConfig

    return VerifierConfig(
        n_standard=8,
        n_extended=8,
        max_mutants=6,
        reference_timeout_s=20.0,
        reference_call_budget_s=1.0,
        run_floor_s=5.0,
    )


# -- the rows ------------------------------------------------------------------------------

TEMPLATES: list[tuple[str, str, Any]] = [
    (
        "scaled_sum",
        "def {name}(xs: list[int]) -> int:\n    return sum(x * {k} for x in xs if x % 2 == {r})\n",
        lambda xs, k, r: sum(x * k for x in xs if x % 2 == r),
    ),
    (
        "count_above",
        "def {name}(xs: list[int]) -> int:\n    return len([x for x in xs if x > {k} - {r}])\n",
        lambda xs, k, r: len([x for x in xs if x > k - r]),
    ),
    (
        "clip_max",
        "def {name}(xs: list[int]) -> int:\n    return max([min(x, {k}) for x in xs] + [{r}])\n",
        lambda xs, k, r: max([min(x, k) for x in xs] + [r]),
    ),
]
INPUTS = ([1, 2, 3, 4], [-5, 0, 7, 12, 9], [], [100, -100, 3])

HOSTILE: dict[str, str] = {
    "infinite_loop": "def {name}(xs: list[int]) -> int:\n    while True:\n        pass\n",
    "fork_bomb": (
        "import os\n"
        "for _ in range(200):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            import time; time.sleep(30); os._exit(0)\n"
        "    except OSError:\n"
        "        break\n"
    ),
    "output_flood": "import sys\nsys.stderr.write('x' * 50_000_000)\nprint('y' * 50_000_000)\n",
    "daemon": (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(3600)\n"
        "    os._exit(0)\n"
    ),
    "memory_hog": "hog = [bytearray(1 << 20) for _ in range(4096)]\n",
}
UNREADABLE = ("this is not json", "[1, 2, 3]", '{"task_id": "missing-fields"}', '"a string"')


def make_row(i: int) -> tuple[str, str | dict[str, Any]]:
    """Row ``i``: (kind, the row). Half sound, the rest broken, unreadable or hostile."""
    slot = i % 10
    name, source, fn = TEMPLATES[i % len(TEMPLATES)]
    k, r = 2 + i % 7, (i // 7) % 2
    entry = f"{name}_{i}"
    reference = source.format(name=entry, k=k, r=r)
    asserts = "".join(f"    assert {entry}({xs!r}) == {fn(xs, k, r)!r}\n" for xs in INPUTS)
    tests = f"from solution import {entry}\n\ndef test_{entry}():\n{asserts}"
    row = {
        "task_id": f"soak-{i}",
        "prompt": f"def {entry}(xs: list[int]) -> int: ...\n",
        "entry_point": entry,
        "reference_solution": reference,
        "tests": tests,
    }
    if slot < 5:
        return "sound", row
    if slot in (5, 6):
        broken = reference.replace("return ", "return 1 + ", 1)
        return "broken", {**row, "reference_solution": broken}
    if slot == 7:
        return "unreadable", UNREADABLE[(i // 10) % len(UNREADABLE)]
    kind = sorted(HOSTILE)[(i // 10 * 2 + slot - 8) % len(HOSTILE)]
    body = HOSTILE[kind].format(name=entry)
    hostile = body if kind == "infinite_loop" else body + reference
    return f"hostile:{kind}", {**row, "reference_solution": hostile}


def write_rows(path: Path, n: int) -> list[str]:
    kinds = []
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            kind, row = make_row(i)
            kinds.append(kind)
            handle.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return kinds


def expected(kind: str, record: dict[str, Any]) -> bool:
    """Whether a verdict is what its row's kind calls for."""
    if kind == "sound":
        return record["passed"] is True
    if kind == "broken":
        return record["passed"] is False and "reference" in record.get("failed_checks", [])
    if kind == "unreadable":
        return record["status"] == "unreadable"
    if kind == "hostile:infinite_loop":
        return record["passed"] is False
    return isinstance(record.get("status"), str)  # any verdict; what matters is that it ends


# -- the worker's cgroup ----------------------------------------------------------------------


class Cgroup:
    """A cgroup (v1: memory, pids, cpu) of our own for the worker, or none where not possible."""

    def __init__(self) -> None:
        self.dirs: list[str] = []
        if os.geteuid() != 0 or not os.path.isdir(os.path.join(CGROUP_ROOT, "pids")):
            return
        own = {}
        with open("/proc/self/cgroup") as handle:
            for line in handle:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for name in controllers.split(","):
                    own[name] = path
        name = f"sipdo-soak-{uuid.uuid4().hex[:8]}"
        try:
            for hierarchy in HIERARCHIES:
                directory = os.path.join(CGROUP_ROOT, hierarchy) + own.get(hierarchy, "/")
                path = os.path.join(directory, name)
                os.mkdir(path)
                self.dirs.append(path)
        except OSError:
            self.remove()

    def enter(self) -> None:
        """In the worker, before exec: join the cgroup."""
        for path in self.dirs:
            with open(os.path.join(path, "cgroup.procs"), "w") as handle:
                handle.write(str(os.getpid()))

    def processes(self) -> int:
        """Processes in the cgroup and every cgroup under it (the pids hierarchy)."""
        count = 0
        for path in self.dirs[1:2]:
            for directory, _, _ in os.walk(path):
                with open(os.path.join(directory, "cgroup.procs")) as handle:
                    count += len(handle.read().split())
        return count

    def children(self) -> int:
        """Per-run cgroups left under the worker's (every hierarchy)."""
        return sum(len(next(os.walk(path))[1]) for path in self.dirs)

    def remove(self) -> None:
        for path in reversed(self.dirs):
            for directory, _, _ in sorted(os.walk(path), reverse=True):
                with contextlib.suppress(OSError):
                    os.rmdir(directory)
        self.dirs = []


def mounts() -> int:
    """Mounts on a process jail's root (they live in the runs' namespaces, never here)."""
    with open("/proc/self/mountinfo") as handle:
        return sum("/sipdo-root-" in line for line in handle)


def tmp_entries() -> set[str]:
    """Jail roots in /tmp (other programs' sandboxes make some too: only reported)."""
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("sipdo-root-")}


def containers(instances: list[str]) -> int:
    if not instances:
        return 0
    import docker

    client = docker.from_env()
    try:
        found = client.containers.list(all=True)
        return sum(any(i in json.dumps(c.labels) for i in instances) for c in found)
    finally:
        client.close()


# -- one worker ----------------------------------------------------------------------------


@dataclass
class Phase:
    seconds: float = 0.0
    written: int = 0
    rss_mb: list[tuple[int, float]] = field(default_factory=list)  # (lines in output, MB)
    killed: bool = False


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def complete_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return path.read_bytes().count(b"\n")


def run_worker(
    tasks: Path,
    out: Path,
    *,
    jobs: int,
    sandbox: str,
    cgroup: Cgroup,
    kill_at: int | None,
    info: Path,
) -> Phase:
    """One ``verify_dataset`` in a child process; SIGKILLed once ``kill_at`` lines are out."""
    argv = [sys.executable, __file__, "--worker", str(tasks), str(out), str(info)]
    argv += ["--jobs", str(jobs), "--sandbox", sandbox]
    phase = Phase()
    before = complete_lines(out)
    started = time.perf_counter()
    import sipdo  # the worker imports the same sipdo as this process

    root = os.path.dirname(os.path.dirname(os.path.abspath(sipdo.__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(argv, env=env, preexec_fn=cgroup.enter, start_new_session=True)
    next_sample = 0.0
    while proc.poll() is None:
        lines = complete_lines(out)
        if time.perf_counter() >= next_sample:
            rss = rss_mb(proc.pid)
            if rss is not None:
                phase.rss_mb.append((lines, rss))
            next_sample = time.perf_counter() + 1.0
        if kill_at is not None and lines >= kill_at:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            phase.killed = True
            break
        time.sleep(0.1)
    phase.seconds = time.perf_counter() - started
    phase.written = complete_lines(out) - before
    if not phase.killed and proc.returncode != 0:
        raise SystemExit(f"the worker failed with exit code {proc.returncode}")
    return phase


def worker(tasks: Path, out: Path, info: Path, jobs: int, sandbox_kind: str) -> int:
    """In the child: open the sandbox, say what it is, verify (resuming ``out`` if present)."""
    from sipdo.sandbox.factory import open_sandbox
    from sipdo.verifiers import verify_dataset

    extra: dict[str, Any] = {"pool_size": jobs} if sandbox_kind == "docker" else {}
    with open_sandbox(sandbox_kind, max_concurrency=jobs, **extra) as sandbox:
        wait = getattr(sandbox, "wait_ready", None)
        if wait is not None:
            wait()
        with info.open("a") as handle:
            handle.write(json.dumps({"instance": getattr(sandbox, "instance_id", None)}) + "\n")
        verify_dataset(
            tasks,
            output=out,
            sandbox=sandbox,
            jobs=jobs,
            resume=out.exists(),
            config=soak_config(),
        )
    return 0


# -- the soak ------------------------------------------------------------------------------


@dataclass
class SoakResult:
    rows: int
    kinds: Counter[str]
    statuses: Counter[str]
    one_verdict_each: bool
    unexpected: list[tuple[int, str, str]]
    kept_before_kill: int
    kept_unchanged: bool
    redone: int
    phases: list[Phase]
    leftovers_after_kill: dict[str, int]
    leftovers_at_end: dict[str, int]

    @property
    def rows_per_s(self) -> float:
        return sum(p.written for p in self.phases) / sum(p.seconds for p in self.phases)


def soak(
    n: int, *, jobs: int, sandbox: str, directory: Path, kill_fraction: float = 0.5
) -> SoakResult:
    tasks, out, info = directory / "tasks.jsonl", directory / "verdicts.jsonl", directory / "info"
    kinds = write_rows(tasks, n)
    cgroup = Cgroup()
    tmp_before, mounts_before = tmp_entries(), mounts()

    def leftovers() -> dict[str, int]:
        instances = [json.loads(x)["instance"] for x in info.read_text().splitlines()]
        return {
            "processes": cgroup.processes(),
            "run_cgroups": cgroup.children(),
            "mounts": mounts() - mounts_before,
            "tmp_entries": len(tmp_entries() - tmp_before),
            "containers": containers([i for i in instances if i]),
        }

    try:
        first = run_worker(
            tasks, out, jobs=jobs, sandbox=sandbox, cgroup=cgroup,
            kill_at=max(1, int(n * kill_fraction)), info=info,
        )  # fmt: skip
        time.sleep(1.0)  # the killed worker's fork server notices its socket closed
        after_kill = leftovers()
        kept = out.read_bytes()
        kept = kept[: kept.rfind(b"\n") + 1]  # a torn last line is not a verdict
        second = run_worker(
            tasks, out, jobs=jobs, sandbox=sandbox, cgroup=cgroup, kill_at=None, info=info
        )
        at_end = leftovers()
    finally:
        cgroup.remove()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    rows = [r["row"] for r in records]
    unexpected = [
        (r["row"], kinds[r["row"]], r["status"])
        for r in records
        if not expected(kinds[r["row"]], r)
    ]
    return SoakResult(
        rows=n,
        kinds=Counter(k.split(":")[0] for k in kinds),
        statuses=Counter(r["status"] for r in records),
        one_verdict_each=sorted(rows) == list(range(n)),
        unexpected=unexpected,
        kept_before_kill=kept.count(b"\n"),
        kept_unchanged=out.read_bytes().startswith(kept),
        redone=second.written,
        phases=[first, second],
        leftovers_after_kill=after_kill,
        leftovers_at_end=at_end,
    )


def report(result: SoakResult, sandbox: str, jobs: int) -> None:
    first, second = result.phases
    print(f"{result.rows} rows ({dict(result.kinds)}), sandbox {sandbox}, jobs {jobs}")
    print(f"  verdicts by status: {dict(result.statuses)}")
    print(f"  exactly one verdict per row: {result.one_verdict_each}")
    print(f"  verdicts not as their row's kind expects: {len(result.unexpected)}")
    for row, kind, status in result.unexpected[:10]:
        print(f"    row {row} ({kind}): {status}")
    print(
        f"  killed after {result.kept_before_kill} verdicts ({first.seconds:.0f}s, "
        f"{first.written / first.seconds:.2f} rows/s); resumed: {result.redone} rows redone "
        f"(= {result.rows - result.kept_before_kill} missing: "
        f"{result.redone == result.rows - result.kept_before_kill}), in {second.seconds:.0f}s "
        f"({second.written / max(second.seconds, 1e-9):.2f} rows/s); kept verdicts unchanged: "
        f"{result.kept_unchanged}"
    )
    print(f"  throughput over both phases: {result.rows_per_s:.2f} rows/s")
    for name, phase in (("killed worker", first), ("resumed worker", second)):
        samples = phase.rss_mb
        if samples:
            points = samples[:: max(1, len(samples) // 6)] + samples[-1:]
            text = ", ".join(f"{lines}: {mb:.0f}" for lines, mb in points)
            peak = max(m for _, m in samples)
            print(f"  {name} RSS MB by verdicts written: {text} (max {peak:.0f})")
    print(f"  left after the kill: {result.leftovers_after_kill}")
    print(f"  left at the end:     {result.leftovers_at_end}")
    load = os.getloadavg()
    print(f"  load average (1/5/15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sandbox", default="process", choices=("process", "docker"))
    parser.add_argument(
        "--worker", nargs=3, metavar=("TASKS", "OUT", "INFO"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.worker:
        tasks, out, info = (Path(p) for p in args.worker)
        return worker(tasks, out, info, args.jobs, args.sandbox)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        result = soak(args.rows, jobs=args.jobs, sandbox=args.sandbox, directory=Path(tmp))
    report(result, args.sandbox, args.jobs)
    ok = (
        result.one_verdict_each
        and not result.unexpected
        and result.kept_unchanged
        and result.redone == result.rows - result.kept_before_kill
        and not any(v for k, v in result.leftovers_at_end.items() if k != "tmp_entries")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
