"""The jailed process backend works wherever the interpreter lives, /tmp included.

Regression: with the venv under the host's /tmp (a CI checkout there), the
jail's read-only bind of the venv collided with its own /tmp and the sandbox
silently fell back to basic isolation.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sipdo.sandbox.base import ISOLATION_VOCABULARY

REPO = Path(__file__).resolve().parents[2]

PROBE = """
from sipdo.sandbox import ProcessSandbox
with ProcessSandbox(namespaces=True) as box:
    result = box.run({"p.py": "import sys; print(sys.prefix)"}, ["python", "p.py"])
    print(result.exit_code, result.stdout.strip(), sorted(box.isolation) == sorted(ALL))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the namespace jail needs root")
def test_jail_works_with_the_interpreter_under_tmp() -> None:
    base = (
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    )
    with tempfile.TemporaryDirectory(prefix="sipdo-venv-", dir="/tmp") as venv:
        os.chmod(venv, 0o755)  # as a checkout's directories are: the run's uid must enter
        subprocess.run([str(base), "-m", "venv", "--without-pip", venv], check=True)
        python = Path(venv) / "bin" / "python"
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
    exit_code, prefix, claims_all = done.stdout.split()
    assert (exit_code, prefix, claims_all) == ("0", venv, "True")
