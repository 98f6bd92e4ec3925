"""Hypothesis's Unicode tables, built once on the host and shipped into the runs that draw.

The first time a process draws text, Hypothesis builds two tables by walking
all 1.1 million code points: the general category of each
(``hypothesis.internal.charmap.charmap``) and which ones the UTF-8 codec
encodes (``intervals_from_codec("utf-8")``). That is about a second of CPU, two
on a loaded machine, and a fresh sandbox run (or a fork-server child whose
server has not built them) pays it every time, since nothing it writes
survives the run. Hypothesis caches both as files under its storage directory,
``.hypothesis/unicode_data/<Unicode version>/`` of the working directory, and
reads them when they are there. ``cache_files`` has Hypothesis itself write
them, once per host process, into a temporary directory (a subprocess, so the
host's own Hypothesis state and working directory are untouched), and returns
them as run files under that path: a run sent with them finds the tables
cached. They are facts about Unicode, not about any task, so trusting them is
no wider than trusting the interpreter.

The tables depend only on the Unicode version, which names their directory: a
sandbox interpreter with another version looks elsewhere and builds its own,
as before. The module they come from is private to Hypothesis: where it lacks
what is called here, nothing is shipped and runs build the tables themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

STORAGE = ".hypothesis"  # Hypothesis's default storage directory, under the run's cwd
_BUILD = """
import sys
try:
    from hypothesis.internal import charmap
except Exception:
    sys.exit(3)
build, codec = getattr(charmap, "charmap", None), getattr(charmap, "intervals_from_codec", None)
if build is None:
    sys.exit(3)
build()
if codec is not None:
    codec("utf-8")
"""
_lock = threading.Lock()
_built: dict[str, bytes] | None = None


def build(python: str = sys.executable, timeout_s: float = 120.0) -> dict[str, bytes]:
    """Have ``python``'s Hypothesis write its Unicode tables; {run file name: bytes}.

    Empty when that Hypothesis has no such tables (its private module changed)
    or the build fails: runs then build the tables themselves.
    """
    with tempfile.TemporaryDirectory(prefix="sipdo-unicode-") as tmp:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HYPOTHESIS_STORAGE_DIRECTORY": tmp,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        try:
            done = subprocess.run(
                [python, "-c", _BUILD],
                cwd=tmp,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return {}
        if done.returncode != 0:
            return {}
        root = Path(tmp)
        return {
            f"{STORAGE}/{path.relative_to(root).as_posix()}": path.read_bytes()
            for path in sorted((root / "unicode_data").rglob("*.json.gz"))
        }


def cache_files() -> dict[str, bytes]:
    """The tables as run files, built on first use and kept for this process."""
    global _built
    with _lock:
        if _built is None:
            _built = build()
        return _built


def files_for(tests: str, *, generates: bool) -> dict[str, bytes]:
    """The tables for a run that may draw text: one that generates inputs, or whose tests
    use Hypothesis themselves; nothing for a run of plain tests alone, which would only
    pay for building them (about a second, once per host process)."""
    return cache_files() if generates or "hypothesis" in tests else {}
