"""The jailed process backend works wherever the interpreter lives: /tmp, behind a link.

Regressions: with the venv under the host's /tmp (a CI checkout there), the
jail's read-only bind of the venv collided with its own /tmp and the sandbox
silently fell back to basic isolation; with ``.venv`` a symbolic link to a
venv kept elsewhere, the jail (which binds real paths) could not find
``.venv/bin/python``.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sipdo.sandbox.base import ISOLATION_VOCABULARY, Limits

REPO = Path(__file__).resolve().parents[2]

PROBE = """
from sipdo.sandbox import ProcessSandbox
with ProcessSandbox(namespaces=True) as box:
    result = box.run({"p.py": "import sys; print(sys.prefix)"}, ["python", "p.py"])
    print(result.exit_code, result.stdout.strip(), sorted(box.isolation) == sorted(ALL))
"""


BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"


def make_venv(path: str) -> None:
    os.chmod(path, 0o755)  # as a checkout's directories are: the run's uid must enter
    subprocess.run([str(BASE_PYTHON), "-m", "venv", "--without-pip", path], check=True)


def probe(python: Path) -> list[str]:
    """Run ``PROBE`` under ``python``: [exit code, the run's sys.prefix, claims everything]."""
    paths = os.pathsep.join([str(REPO), *site.getsitepackages()])
    code = f"ALL = {sorted(ISOLATION_VOCABULARY)!r}\n{PROBE}"
    done = subprocess.run(
        [str(python), "-c", code],
        env={**os.environ, "PYTHONPATH": paths},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "basic isolation" not in done.stderr, done.stderr[-2000:]
    return done.stdout.split()


@pytest.mark.skipif(os.geteuid() != 0, reason="the namespace jail needs root")
def test_jail_works_with_the_interpreter_under_tmp() -> None:
    with tempfile.TemporaryDirectory(prefix="sipdo-venv-", dir="/tmp") as venv:
        make_venv(venv)
        found = probe(Path(venv) / "bin" / "python")
    assert found == ["0", venv, "True"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the namespace jail needs root")
def test_jail_works_with_a_venv_reached_through_a_symlink() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="sipdo-real-venv-", dir="/tmp") as real,
        tempfile.TemporaryDirectory(prefix="sipdo-checkout-", dir="/tmp") as checkout,
    ):
        make_venv(real)
        os.chmod(checkout, 0o755)
        link = Path(checkout) / ".venv"
        link.symlink_to(real, target_is_directory=True)
        found = probe(link / "bin" / "python")
    # The run's interpreter is the linked venv, run by its real path.
    assert found == ["0", real, "True"]


def test_run_cgroups_of_a_killed_owner_are_reaped() -> None:
    # An owner SIGKILLed mid-run cannot remove its runs' cgroups; the next
    # factory removes those of dead owners, and only those.
    from sipdo.errors import SandboxUnavailableError
    from sipdo.sandbox._cgroup import CgroupFactory

    try:
        factory = CgroupFactory()
        factory.probe()
    except (SandboxUnavailableError, OSError) as exc:
        pytest.skip(f"no per-run cgroups here: {exc}")
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = [os.path.join(base, f"sipdo-{dead.pid}-deadbeef") for base in factory.bases.values()]
    ours = factory.create(Limits())
    for path in left:
        os.mkdir(path)
    try:
        assert CgroupFactory().reap() == 0  # the new factory reaped them already
        assert not any(os.path.exists(path) for path in left)
        assert all(os.path.isdir(path) for path in ours.dirs)  # a live owner's stays
    finally:
        ours.remove()
        for path in left:
            if os.path.isdir(path):
                os.rmdir(path)
