"""Store fixtures: every conformance test runs on a real SQLite file and a real PostgreSQL.

PostgreSQL comes from ``SIPDO_TEST_POSTGRES_URL``; when it is unset the fixture
runs ``scripts/postgres.sh`` (which installs and starts a throwaway cluster).
Each test gets a fresh database. Without a server the PostgreSQL cases skip
with the reason, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipdo.store import RunStore

ROOT = Path(__file__).resolve().parents[2]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL required under CI=true: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The admin URL of a running PostgreSQL server (database ``sipdo_test``)."""
    url = os.environ.get("SIPDO_TEST_POSTGRES_URL")
    if not url:
        try:
            proc = subprocess.run(
                ["bash", str(ROOT / "scripts" / "postgres.sh")],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            _unavailable(f"scripts/postgres.sh did not run: {exc}")
            raise AssertionError("unreachable") from exc
        if proc.returncode != 0 or not proc.stdout.strip():
            _unavailable(f"scripts/postgres.sh failed: {proc.stderr.strip()[-500:]}")
        url = proc.stdout.strip().splitlines()[-1]
    try:
        import psycopg

        with psycopg.connect(_libpq(url), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        _unavailable(f"cannot connect to {url}: {exc}")
    return url


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    """A new empty database on the test server, dropped afterwards."""
    import psycopg

    name = f"sipdo_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(postgres_url), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base, _, _ = postgres_url.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(_libpq(postgres_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    url: str = request.getfixturevalue("fresh_postgres")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[RunStore]:
    with RunStore(store_url) as s:
        yield s
