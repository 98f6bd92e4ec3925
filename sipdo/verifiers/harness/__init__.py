"""Scripts shipped into sandbox runs (stdlib + pytest + hypothesis only).

Each module here is copied verbatim into a run's working directory under the
name given by ``SCRIPT_NAMES``; none of them imports sipdo, so they run under
any Python 3.11 that has pytest and hypothesis. The modules a run imports
(rather than runs as its script) also go with their bytecode, compiled here
once (``bytecode``), so the run does not compile them again.
"""

from __future__ import annotations

import importlib.util
import marshal
import sys
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
    "live_driver": "_sipdo_live.py",
}
_CHECKED_HASH = 0b11  # PEP 552 flags: hash-based, and the source's hash is checked


@cache
def script(name: str) -> str:
    """Source text of the harness module ``name`` (a key of ``SCRIPT_NAMES``)."""
    return (Path(__file__).parent / f"{name}.py").read_text(encoding="utf-8")


def files(*names: str) -> dict[str, str]:
    """Files for a run: the named harness modules under their in-sandbox names."""
    return {SCRIPT_NAMES[name]: script(name) for name in names}


@cache
def _pyc(name: str) -> tuple[str, bytes] | None:
    tag = sys.implementation.cache_tag
    if tag is None:  # this interpreter does not cache bytecode
        return None
    source = script(name).encode("utf-8")
    code = compile(source, SCRIPT_NAMES[name], "exec", dont_inherit=True)
    header = importlib.util.MAGIC_NUMBER + _CHECKED_HASH.to_bytes(4, "little")
    data = header + importlib.util.source_hash(source) + marshal.dumps(code)
    stem = SCRIPT_NAMES[name].removesuffix(".py")
    return f"__pycache__/{stem}.{tag}.pyc", data


def bytecode(*names: str) -> dict[str, bytes]:
    """The named harness modules' bytecode as run files (``__pycache__``), for modules the
    run imports. Hash-checked: an interpreter whose version differs, or a module whose
    source differs, ignores the file and compiles the source as usual."""
    found = (_pyc(name) for name in names)
    return dict(item for item in found if item is not None)
