"""Trusted run: the task's tests against *recorded* outputs (runs in the sandbox).

No candidate code is present. ``solution.py`` is the reference module (so the
tests find its helpers and exception classes), with the entry point replaced
by a replayer that answers each call from a table of outputs the candidate
produced in its own run: plain data, decoded here, so nothing the candidate
wrote executes. Arguments are updated in place from the recorded post-call
values. A call with arguments missing from the table is logged as a *miss*
(the host then runs the candidate on those arguments and replays again).
The tests run once per table (``tables``: list of ``{input key: record}``).
Records: ``{"t", "test", "o", "msg"}``, ``{"t", "miss"}``, ``{"exit"}``, ``{"done"}``.
"""

from __future__ import annotations

import builtins
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sipdo.verifiers.harness import codec
else:
    import _sipdo_codec as codec


class NoAnswer(BaseException):
    """The candidate timed out or gave no answer (fails the test; not an ``Exception``)."""


class ReplayMiss(BaseException):
    """The candidate was never run on these arguments."""


def _exception(name: str, module: Any) -> type[Exception]:
    found = getattr(builtins, name, None) or getattr(module, name, None)
    if isinstance(found, type) and issubclass(found, Exception):
        return found
    return type(name, (Exception,), {})


def _restore(arg: Any, data: Any) -> None:
    value = codec.decode(data)
    if (type(arg) is list and type(value) is list) or (
        type(arg) is bytearray and type(value) is bytearray
    ):
        arg[:] = value
    elif (type(arg) is dict and type(value) is dict) or (type(arg) is set and type(value) is set):
        arg.clear()
        arg.update(value)


class Replayer:
    """Stands in for the entry point and drives the test loop once per table."""

    def __init__(self, module: Any, tables: list[dict[str, Any]], emit: Any) -> None:
        self.module, self.tables, self.emit = module, tables, emit
        self.table: dict[str, Any] = {}
        self.t = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            item = codec.encode_call(args, kwargs)
        except codec.Unencodable:
            raise NoAnswer from None  # cannot be looked up: the test must fail, not catch it
        if codec.opaque_inside(item):
            raise NoAnswer
        key = codec.key(item)
        record = self.table.get(key)
        if record is None:
            record = self.table[key] = self.missing(item, key)
        post = record.get("post", [])
        for arg, data in zip(args, post, strict=False):
            _restore(arg, data)
        if len(post) > len(args) and isinstance(post[len(args)], dict):
            for name, data in post[len(args)].get("d", []):
                if name in kwargs:
                    _restore(kwargs[name], data)
        result = record["r"]
        if "ok" in result:
            return codec.decode(result["ok"])
        if "raise" in result:
            raise _exception(result["raise"], self.module)
        raise NoAnswer

    def missing(self, item: dict[str, Any], key: str) -> dict[str, Any]:
        """The record of a call no table has: none here (logged as a miss, the test
        fails); the live driver asks the candidate's process instead."""
        self.emit({"t": self.t, "miss": item})
        raise ReplayMiss

    def pytest_runtest_setup(self, item: Any) -> None:
        random.seed(0)

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.emit(
                {
                    "t": -1,
                    "test": report.nodeid or "<collection>",
                    "o": "failed",
                    "msg": str(report.longrepr)[-400:],
                }
            )

    def pytest_runtestloop(self, session: Any) -> bool:
        from _pytest.runner import runtestprotocol

        for t, table in enumerate(self.tables):
            self.t, self.table = t, table
            for item in session.items:
                outcome, msg = codec.outcome_of(runtestprotocol(item, nextitem=None, log=False))
                self.emit({"t": t, "test": item.nodeid, "o": outcome, "msg": msg})
        return True


def main() -> None:
    request, emit = codec.boot()
    import pytest
    import solution  # type: ignore[import-not-found]

    random.seed(0)
    replayer = Replayer(solution, request["tables"], emit)
    setattr(solution, request["entry"], replayer)
    code = pytest.main(
        ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", request["tests_file"]],
        plugins=[replayer],
    )
    emit({"exit": int(code)})
    emit({"done": True})


if __name__ == "__main__":
    main()
