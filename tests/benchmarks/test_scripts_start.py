"""Every benchmark script still starts: its imports resolve and ``--help`` exits 0.

The benchmarks run outside the test suite (slow, real models, quiet machines), so
a refactor that renames what one imports would otherwise go unnoticed until
someone runs it (``verify_profile.py`` imported a removed private function for a
stop). Run as their docstrings say: ``python benchmarks/X.py`` from the
repository root, with ``PYTHONPATH=.`` (``serve_concurrency.py`` needs it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# broken_tasks.py takes no options: it (re)writes the shipped corpus when run.
SCRIPTS = sorted(
    p.name for p in (ROOT / "benchmarks").glob("*.py") if "argparse" in p.read_text("utf-8")
)


def test_there_are_benchmark_scripts() -> None:
    assert "verify_profile.py" in SCRIPTS
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_script_starts(script: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
