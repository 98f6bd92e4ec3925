"""A private, throwaway PostgreSQL cluster that a test may stop, crash and start.

Never the shared cluster on port 55432 (other tests and helpers use it): this
one has its own data directory under the test's tmp dir, its own free port and
its own socket directory, and is stopped and deleted when the test ends.
Debian's server binaries are used; as root the server runs as ``postgres``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """A running private cluster; ``url`` points at its database ``sipdo``."""

    bin: Path
    data: Path
    port: int
    log: Path
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/sipdo"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off"
        )
        self._ctl("-l", str(self.log), "-w", "-t", "60", "-o", options, "start")

    def crash(self) -> None:
        """Stop as a crash does: every backend killed, no checkpoint (recovery on start)."""
        self._ctl("-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """initdb, start and yield a private cluster in a new /tmp directory (pytest's tmp
    dirs are closed to the ``postgres`` user); stop and delete it after."""
    bin_dir = _bin()
    if bin_dir is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("PostgreSQL server binaries required under CI=true")
        pytest.skip("PostgreSQL server binaries are not installed")
    root = Path(tempfile.mkdtemp(prefix="sipdo-private-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
         "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    cluster = Cluster(bin_dir, data, _free_port(), root / "server.log", as_user)
    cluster.start()
    try:
        subprocess.run(
            [*as_user, str(bin_dir / "psql"), "-h", str(root), "-p", str(cluster.port),
             "-U", "postgres", "-d", "postgres", "-c", "CREATE DATABASE sipdo"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        yield cluster
    finally:
        if (data / "postmaster.pid").exists():
            cluster.crash()
        shutil.rmtree(root, ignore_errors=True)
