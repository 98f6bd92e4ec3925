"""Scripts shipped into sandbox runs (stdlib + pytest + hypothesis only).

Each module here is copied verbatim into a run's working directory under the
name given by ``SCRIPT_NAMES``; none of them imports sipdo, so they run under
any Python 3.11 that has pytest and hypothesis.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

SCRIPT_NAMES: dict[str, str] = {
    "codec": "_sipdo_codec.py",
    "call_driver": "_sipdo_call.py",
    "reference_driver": "_sipdo_reference.py",
    "replay_driver": "_sipdo_replay.py",
    "gen": "_sipdo_gen.py",
    "contract": "_sipdo_contract.py",
    "plain": "_sipdo_plain.py",
}


@cache
def script(name: str) -> str:
    """Source text of the harness module ``name`` (a key of ``SCRIPT_NAMES``)."""
    return (Path(__file__).parent / f"{name}.py").read_text(encoding="utf-8")


def files(*names: str) -> dict[str, str]:
    """Files for a run: the named harness modules under their in-sandbox names."""
    return {SCRIPT_NAMES[name]: script(name) for name in names}
