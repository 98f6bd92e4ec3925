"""Report fixtures: one real ``sipdo run`` of the hostile scripted world on a SQLite store."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, SIPDO, cli_env
from tests.conftest import in_ci
from tests.report import world
from tests.report.chromium import chromium_binary


@dataclass(frozen=True)
class RecordedRun:
    db_url: str
    run_id: str
    home: Path
    workdir: Path

    def sipdo(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The installed ``sipdo`` console script, as a real subprocess."""
        return subprocess.run(
            [str(SIPDO), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            # This checkout's code, even when the console script is an editable install
            # of another one.
            env={**cli_env(self.home), "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            check=False,
        )


@pytest.fixture(scope="session")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> RecordedRun:
    """The hostile story (see ``tests.report.world``) run to its end by the real CLI."""
    base = tmp_path_factory.mktemp("report-run")
    run = RecordedRun(f"sqlite:///{base / 'runs.db'}", "hostile-story", base / "home", base)
    done = run.sipdo(*world.run_args(base / "scripts", run.db_url, run.run_id), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return run


@pytest.fixture(scope="session")
def browser() -> None:
    """Skip (locally) or fail (under CI=true) without Debian's chromium."""
    if chromium_binary() is None:
        message = "no chromium binary (scripts/setup.sh installs Debian's chromium)"
        if in_ci():
            pytest.fail(message + " (CI=true: browser tests must run)", pytrace=False)
        pytest.skip(message)
