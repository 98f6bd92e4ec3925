"""A small soak of ``verify_dataset`` (``benchmarks/verify_soak.py`` runs 1,000 rows).

Mixed rows (sound, broken reference, unreadable, hostile: infinite loop, fork
bomb, output flood, daemon, memory hog), a worker SIGKILLed halfway and
resumed: one verdict per row as its kind expects, the verdicts written before
the kill kept as they were, exactly the missing rows redone, and nothing of
the worker left (processes, per-run cgroups, mounts).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "verify_soak.py"


def _soak_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_soak", BENCHMARK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["verify_soak"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_killed_and_resumed_soak_gives_one_verdict_per_row(tmp_path: Path) -> None:
    soak = _soak_module()
    result = soak.soak(10, jobs=2, sandbox="process", directory=tmp_path)
    soak.report(result, "process", 2)
    assert result.one_verdict_each
    assert result.unexpected == []
    assert set(result.kinds) == {"sound", "broken", "unreadable", "hostile"}
    assert 0 < result.kept_before_kill < 10
    assert result.kept_unchanged
    assert result.redone == 10 - result.kept_before_kill
    leftovers = result.leftovers_at_end
    assert (leftovers["processes"], leftovers["run_cgroups"], leftovers["mounts"]) == (0, 0, 0)
