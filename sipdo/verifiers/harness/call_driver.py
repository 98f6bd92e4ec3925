"""Calls an entry point on serialized inputs and reports plain data (runs in the sandbox).

Request: ``entry``, ``modules`` (module names to load, default ``["solution"]``),
``inputs`` (``{"args": [...], "kwargs": {...}}`` encoded), ``budgets`` (seconds
per call), optional ``expected`` records, ``policy`` (how arguments after the
call compare, ``codec.same_result``) and ``stop_from`` (after the first
mismatch at an index >= ``stop_from`` the module is abandoned: used for
batches of trusted mutants). Records: ``{"m", "i", "r", "post", "dt"}`` per call
(``r`` is ``{"ok": value}``, ``{"timeout": true}`` or ``{"raise": type name}``, with
``"own": true`` when a ``raise``/``assert`` statement of the code's own module
raised it: ``sipdo.verifiers.domain``), ``{"m", "import"}`` when a module cannot
load, ``{"m", "end"}``, ``{"done"}``.
Everything the code under test prints goes to stderr; whatever it does, the
host treats these records only as claims about its outputs.
"""

from __future__ import annotations

import importlib
import opcode
import random
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sipdo.verifiers.harness import codec
else:
    import _sipdo_codec as codec


class CallTimeout(BaseException):
    """Raised by the interval timer when a call exceeds its budget."""


def alarm(signum: int, frame: object) -> None:
    raise CallTimeout


def _describe(exc: BaseException) -> str:
    return codec.type_name(type(exc))


_RAISE = opcode.opmap["RAISE_VARARGS"]  # ``raise X`` and ``assert`` (3.11: LOAD_ASSERTION_ERROR)


def own_raise(fn: Any, exc: BaseException) -> bool:
    """``exc`` comes from a ``raise`` or ``assert`` statement in ``fn``'s own module: the
    code under test rejected its input on purpose (a crash inside it, such as
    ``int("")`` or an index out of range, is not that)."""
    if not isinstance(exc, Exception) or exc.__traceback__ is None:
        return False
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    code = tb.tb_frame.f_code
    if module is None or code.co_filename != getattr(module, "__file__", None):
        return False
    raw = code.co_code
    return 0 <= tb.tb_lasti < len(raw) and raw[tb.tb_lasti] == _RAISE


def call_one(fn: Any, item: dict[str, Any], budget: float) -> dict[str, Any]:
    """Call ``fn`` on one encoded input; the result as plain data."""
    args = codec.decode(item.get("args", []))
    kwargs = {k: codec.decode(v) for k, v in item.get("kwargs", {}).items()}
    random.seed(0)
    signal.signal(signal.SIGALRM, alarm)
    start = time.perf_counter()
    result: dict[str, Any]
    try:
        signal.setitimer(signal.ITIMER_REAL, budget)
        try:
            value = fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        dt = time.perf_counter() - start
        try:
            result = {"ok": codec.encode(value)}
        except codec.Unencodable as exc:
            result = {"ok": {"x": f"unencodable ({exc})"}}
    except CallTimeout:
        dt = time.perf_counter() - start
        result = {"timeout": True}
    except BaseException as exc:  # the code under test may raise anything
        signal.setitimer(signal.ITIMER_REAL, 0)
        dt = time.perf_counter() - start
        result = {"raise": _describe(exc)}
        if own_raise(fn, exc):
            result["own"] = True
    try:
        post = [codec.encode(a) for a in args] + [codec.encode(kwargs)]
    except codec.Unencodable:
        post = [{"x": "unencodable argument"}]
    return {"r": result, "post": post, "dt": round(dt, 6)}


class Recording:
    """Stands in for ``impl``: records the top-level calls' inputs (encoded before the
    call; nested calls are not recorded) and gives each call ``budget`` seconds."""

    def __init__(self, impl: Any, budget: float) -> None:
        self.impl, self.budget = impl, budget
        self.depth = 0
        self.inputs: list[dict[str, Any]] = []
        self.unencodable = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.depth:
            return self.impl(*args, **kwargs)
        try:
            item = codec.encode_call(args, kwargs)
            if codec.opaque_inside(item):
                raise codec.Unencodable("argument of an unsupported type")
            self.inputs.append(item)
        except codec.Unencodable:
            self.unencodable += 1
        self.depth += 1
        signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, self.budget)
        try:
            return self.impl(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.depth -= 1


def main() -> None:
    request, emit = codec.boot()
    entry: str = request["entry"]
    inputs: list[dict[str, Any]] = request["inputs"]
    budgets: list[float] = request.get("budgets") or [5.0] * len(inputs)
    expected: list[dict[str, Any]] | None = request.get("expected")
    stop_from: int = request.get("stop_from", len(inputs))
    max_timeouts: int = request.get("max_timeouts", 2)
    policy: str = request.get("policy", "output")
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    for m, name in enumerate(request.get("modules", ["solution"])):
        try:
            random.seed(0)
            fn = getattr(importlib.import_module(name), entry)
        except BaseException as exc:  # import errors, SystemExit, missing entry point
            emit({"m": m, "import": _describe(exc)})
            continue
        timeouts = 0
        for i, item in enumerate(inputs):
            if timeouts >= max_timeouts:
                emit({"m": m, "i": i, "r": {"timeout": True, "skipped": True}, "post": []})
                continue
            record = call_one(fn, item, budgets[i])
            timeouts += "timeout" in record["r"]
            emit({"m": m, "i": i, **record})
            if (
                expected is not None
                and i >= stop_from
                and not codec.same_result(record, expected[i], policy, item)
            ):
                break
        emit({"m": m, "end": True})
    emit({"done": True})


if __name__ == "__main__":
    main()
