"""Tagged-JSON codec for values that cross a sandbox boundary (stdlib only).

The same module runs inside the sandbox (as ``_sipdo_codec``) and on the host.
``encode`` turns a value into plain JSON data using *type-exact* checks
(``type(x) is int``): it never calls a method of the value, so a candidate's
rigged ``__eq__`` / ``__hash__`` / ``__repr__`` / ``__bool__`` / ``__iter__``
cannot run, and any object that is not exactly a builtin container or scalar
becomes an opaque ``{"x": type name}`` that equals nothing. Encoding::

    None, bool, str, small int      themselves
    big int                         {"i": hex}
    float                           {"f": float.hex}      (exact; NaN and inf too)
    complex                         {"c": [re hex, im hex]}
    bytes / bytearray               {"b": base64} / {"ba": base64}
    list                            [...]
    tuple                           {"t": [...]}
    dict                            {"d": [[key, value], ...]}
    set / frozenset                 {"s": [...]} / {"fs": [...]}   (canonically sorted)
    anything else                   {"x": "TypeName"}
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any, cast

MAX_DEPTH = 60
MAX_NODES = 200_000
_SMALL_INT = 2**53
_TYPE_NAME = type.__dict__["__name__"]


def type_name(cls: type) -> str:
    """The class's own name, read past any metaclass property."""
    name = _TYPE_NAME.__get__(cls, type)
    return name if type(name) is str else "?"


class Unencodable(Exception):
    """The value is too large or too deep to encode."""


def encode(value: object) -> Any:
    """Plain JSON data for ``value``; raises ``Unencodable`` past the size limits."""
    return _encode(value, 0, [MAX_NODES], set())


def _encode(x: object, depth: int, budget: list[int], active: set[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise Unencodable("value too large or too deeply nested")
    t = type(x)
    if x is None or t is bool or t is str:
        return x
    if t is int:
        n = cast(int, x)
        return n if -_SMALL_INT < n < _SMALL_INT else {"i": int.__format__(n, "x")}
    if t is float:
        return {"f": float.hex(cast(float, x))}
    if t is complex:
        z = cast(complex, x)
        return {"c": [float.hex(z.real), float.hex(z.imag)]}
    if t is bytes or t is bytearray:
        tag = "b" if t is bytes else "ba"
        return {tag: base64.b64encode(bytes(cast(bytes, x))).decode("ascii")}
    if t not in (list, tuple, dict, set, frozenset):
        return {"x": type_name(t)}
    if id(x) in active:
        raise Unencodable("value contains a reference cycle")
    active.add(id(x))
    try:
        nxt = depth + 1
        if t is list:
            return [_encode(e, nxt, budget, active) for e in list.copy(cast(list[Any], x))]
        if t is tuple:
            return {
                "t": [_encode(e, nxt, budget, active) for e in tuple.__iter__(cast(tuple[Any], x))]
            }
        if t is dict:
            pairs: list[tuple[Any, Any]] = list(dict.items(cast(dict[Any, Any], x)))
            return {
                "d": [
                    [_encode(k, nxt, budget, active), _encode(v, nxt, budget, active)]
                    for k, v in pairs
                ]
            }
        members: list[Any] = list(
            set.__iter__(cast(set[Any], x))
            if t is set
            else frozenset.__iter__(cast(frozenset[Any], x))
        )
        items = [_encode(e, nxt, budget, active) for e in members]
        items.sort(key=key)
        return {"s" if t is set else "fs": items}
    finally:
        active.discard(id(x))


def encode_call(args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """One call's arguments as an input item ``{"args", "kwargs"}`` (``Unencodable`` if not)."""
    return {"args": [encode(a) for a in args], "kwargs": {k: encode(v) for k, v in kwargs.items()}}


def opaque_inside(data: Any) -> bool:
    """Encoded data holds an object that could not be represented (``{"x": ...}``)."""
    return '"x":' in key(data)


def key(data: Any) -> str:
    """Canonical text of encoded data: equal text means identical values."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class Opaque:
    """Stands for a value that could not be encoded; equal only to itself."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<unencodable {self.name}>"


def decode(data: Any) -> Any:
    """Rebuild plain Python objects from encoded data (no code runs)."""
    if isinstance(data, list):
        return [decode(e) for e in data]
    if not isinstance(data, dict):
        return data
    (tag, val), *_ = data.items()
    if tag == "i":
        return int(val, 16)
    if tag == "f":
        return float.fromhex(val)
    if tag == "c":
        return complex(float.fromhex(val[0]), float.fromhex(val[1]))
    if tag in ("b", "ba"):
        raw = base64.b64decode(val)
        return raw if tag == "b" else bytearray(raw)
    if tag == "t":
        return tuple(decode(e) for e in val)
    if tag == "d":
        return {decode(k): decode(v) for k, v in val}
    if tag == "s":
        return {decode(e) for e in val}
    if tag == "fs":
        return frozenset(decode(e) for e in val)
    return Opaque(str(val))


def _number(data: Any) -> float | int | None:
    if type(data) is int:
        return data
    if isinstance(data, dict) and len(data) == 1:
        if "i" in data:
            return int(data["i"], 16)
        if "f" in data:
            return float.fromhex(data["f"])
    return None


def same(a: Any, b: Any, rel: float = 1e-6, abs_: float = 1e-9) -> bool:
    """Encoded values equal: ints and floats numerically (NaN equals NaN, floats
    within tolerance), bool distinct from int, containers element-wise."""
    na, nb = _number(a), _number(b)
    if na is not None or nb is not None:
        if na is None or nb is None:
            return False
        if isinstance(na, float) or isinstance(nb, float):
            fa, fb = float(na), float(nb)
            if math.isnan(fa) or math.isnan(fb):
                return math.isnan(fa) and math.isnan(fb)
            return fa == fb or math.isclose(fa, fb, rel_tol=rel, abs_tol=abs_)
        return na == nb
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, rel, abs_) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        (ta, va), (tb, vb) = next(iter(a.items())), next(iter(b.items()))
        if ta != tb or ta == "x":
            return False
        if ta == "t":
            return same(va, vb, rel, abs_)
        if ta == "c":
            return same({"f": va[0]}, {"f": vb[0]}, rel, abs_) and same(
                {"f": va[1]}, {"f": vb[1]}, rel, abs_
            )
        if ta == "d":
            mb = {key(k): v for k, v in vb}
            ma = {key(k): v for k, v in va}
            return ma.keys() == mb.keys() and all(same(ma[k], mb[k], rel, abs_) for k in ma)
        return bool(va == vb)
    return type(a) is type(b) and bool(a == b)


def same_result(a: Any, b: Any, policy: str = "output", inp: Any = None) -> bool:
    """Call record ``a`` agrees with ``b``: same outcome kind, value / exception type, and
    arguments after the call as ``policy`` says: ``output`` (they are part of the
    result: same as ``b``'s), ``frozen`` (unchanged from the input ``inp``) or
    ``free`` (not looked at)."""
    ra, rb = a.get("r", {}), b.get("r", {})
    if "ok" in ra and "ok" in rb:
        ok = same(ra["ok"], rb["ok"])
    elif "raise" in ra and "raise" in rb:
        ok = ra["raise"] == rb["raise"]
    else:
        ok = False
    if not ok or policy == "free":
        return ok
    if policy == "frozen":
        return inp is not None and unchanged(a.get("post", []), inp)
    return same(a.get("post", []), b.get("post", []))


def unchanged(post: Any, inp: Any) -> bool:
    """The post-call arguments ``post`` equal the encoded input ``inp`` (nothing mutated)."""
    args, kwargs = inp.get("args", []), inp.get("kwargs", {})
    if not isinstance(post, list) or len(post) < len(args):
        return False
    if not same(post[: len(args)], args):
        return False
    if len(post) > len(args):
        return same(post[len(args)], {"d": [[k, v] for k, v in kwargs.items()]})
    return True


def size(data: Any) -> int:
    """A size measure for encoded inputs: nodes, string lengths, integer bit lengths."""
    if isinstance(data, list):
        return 1 + sum(size(e) for e in data)
    if isinstance(data, dict):
        return 1 + sum(size(v) for v in data.values())
    if isinstance(data, str):
        return 1 + len(data)
    if type(data) is int:
        return 1 + abs(data).bit_length() + (data < 0)
    return 1


def render(data: Any, limit: int = 300) -> str:
    """Short Python-like text of encoded data, for feedback."""
    try:
        text = repr(decode(data))
    except (ValueError, TypeError):
        text = key(data)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def outcome_of(reports: list[Any]) -> tuple[str, str]:
    """Collapse pytest setup/call/teardown reports into one outcome and a short message."""
    outcome, msg = "passed", ""
    for rep in reports:
        if rep.failed:
            crash = getattr(rep.longrepr, "reprcrash", None)
            text = getattr(crash, "message", None) or str(rep.longrepr)
            return "failed", f"{rep.when}: {text}"[:400]
        if rep.skipped:
            outcome, msg = "skipped", str(rep.longrepr)[:200]
    return outcome, msg


def boot(before_request: Any = None) -> tuple[dict[str, Any], Any]:
    """Driver start-up inside the sandbox: fixed hash seed, request, private channel.

    Set and dict orders must match between runs, so the driver needs
    ``PYTHONHASHSEED=0``. A child of a sandbox's fork server has it already
    (every server starts with it), so nothing is started: the driver runs on
    the server's preloaded pytest and Hypothesis. Any other interpreter is
    re-executed once with it. pytest plugin autoloading is off either way
    (third-party plugins add noise; a fork server has their modules imported
    but pytest registers none of them). Reads the JSON request from stdin;
    moves the real stdout to a private descriptor and points fd 1 at stderr,
    so prints of the code under test never mix with the records. Returns the
    request and an ``emit(record)`` that writes one nonce-framed line.
    ``before_request()``, if given, runs just before the request is read: the
    live driver starts the candidate's process there, so that process never
    holds the request (or its nonce) in its memory.
    """
    import os
    import sys

    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if sys.flags.hash_randomization:
        if os.environ.get("PYTHONHASHSEED") == "0":
            raise RuntimeError("PYTHONHASHSEED=0 is set but hash randomization is on")
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    if before_request is not None:
        before_request()
    request: dict[str, Any] = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    prefix = "\x1e" + str(request["nonce"]) + " "

    def emit(record: dict[str, Any]) -> None:
        channel.write(prefix + json.dumps(record, separators=(",", ":")) + "\n")
        channel.flush()

    return request, emit
