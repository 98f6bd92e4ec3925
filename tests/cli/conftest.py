"""CLI fixtures: a private SIPDO_HOME, a SQLite store URL, and a real ``sipdo`` subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIPDO = Path(sys.executable).with_name("sipdo")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private SIPDO_HOME (so no test touches ~/.sipdo)."""
    path = tmp_path / "home"
    monkeypatch.setenv("SIPDO_HOME", str(path))
    for name in ("SIPDO_DB", "SIPDO_MODEL", "SIPDO_GENERATOR_MODEL", "SIPDO_CHECKER_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SIPDO_OPTIMIZER_MODEL", raising=False)
    return path


@pytest.fixture
def db_url(tmp_path: Path, home: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPDO_")}
    env.update({"SIPDO_HOME": str(home), "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    return env


@pytest.fixture
def sipdo(home: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed ``sipdo`` console script as a real subprocess."""
    assert SIPDO.exists(), f"console script missing: {SIPDO} (pip install -e .)"

    def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SIPDO), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=cli_env(home),
            cwd=ROOT,
            check=False,
        )

    return run
