"""``sipdo verify`` on Docker while the real engine under it is killed and comes back (slow).

A private ``dockerd`` (``tests.dockerd``) is SIGKILLed with its containerd once
the first verdicts are written, and started again a few seconds later. Rows in
flight meet the dead engine; they must be verified again or reported as
``infrastructure_error``, never graded as wrong code, and the run must finish
with exactly one verdict per row. ``--resume`` then redoes only the rows that
met the fault, and they come out as the undisturbed verdicts.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, SIPDO, cli_env
from tests.dockerd import PrivateDockerd, private_dockerd, running_private_dockerd
from tests.verifiers.datasetkit import SOUND, TWICE, read_jsonl, write_jsonl

__all__ = ["private_dockerd", "running_private_dockerd"]  # fixtures, used by name

pytestmark = [pytest.mark.slow, pytest.mark.docker]

BODIES = [
    ("twice", "def twice(x):\n    return x + x\n", True),
    ("twice", "def twice(x):\n    return 3 * x\n", False),
    ("sound", SOUND["reference_solution"], True),
    ("sound", "def clamp_sum(xs, lo, hi):\n    return sum(xs)\n", False),
]


def test_engine_killed_mid_verify_is_never_graded_as_wrong_code(
    running_private_dockerd: PrivateDockerd, tmp_path: Path
) -> None:
    engine = running_private_dockerd
    n = 16
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [TWICE, SOUND])
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": BODIES[i % 4][0], "solution": BODIES[i % 4][1] + f"# {i}\n"}
            for i in range(n)
        ],
    )
    out = tmp_path / "graded.jsonl"
    env = {**cli_env(tmp_path / "home"), "DOCKER_HOST": engine.host}
    args = [str(SIPDO), "verify", str(tasks), "--solutions", str(samples), "-o", str(out)]
    args += ["--sandbox", "docker", "--jobs", "2", "--no-progress"]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 600
        while not (out.exists() and out.read_text().count("\n") >= 2):
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "no verdict in 600 s"
            time.sleep(0.1)
        engine.stop(kill=True)
        time.sleep(3)
        engine.start()
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        if not engine.answers():
            engine.start()
    assert proc.returncode in (0, 1), output  # 1: some rows did not pass (the wrong bodies)
    rows = read_jsonl(out)
    assert [r["row"] for r in rows] == list(range(n))  # one verdict per row, in order
    for i, r in enumerate(rows):
        right = BODIES[i % 4][2]
        # A right answer is never graded as wrong: it passes, or says the engine failed.
        assert r["passed"] is right or r["status"] == "infrastructure_error", r
    disturbed = [r for r in rows if r["status"] == "infrastructure_error"]
    assert sum(r.get("attempts", 1) > 1 for r in rows) + len(disturbed) >= 1, (
        "no row met the dead engine: the kill came too late"
    )

    resumed = subprocess.run(
        [*args, "--resume"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )
    assert resumed.returncode in (0, 1), resumed.stdout + resumed.stderr
    again = read_jsonl(out)
    assert len(again) == n
    assert [(r["row"], r["passed"]) for r in sorted(again, key=lambda r: r["row"])] == [
        (i, BODIES[i % 4][2]) for i in range(n)
    ]
    assert os.path.exists(engine.socket)
