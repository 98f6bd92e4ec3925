"""Sandbox run: the task's own tests on the candidate, nothing else (the "base" grading).

Shipped into the sandbox as ``_sipdo_base.py`` next to ``_sipdo_codec.py``;
imports no sipdo. This is how HumanEval's own harness grades (the candidate
imported, the tests run against it), so a pass here is comparable to
published pass@k. Records: ``{"test", "o", "msg"}`` per test, ``{"exit"}``,
``{"done"}``; a candidate that ends the process early leaves no ``done``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sipdo.verifiers.harness import codec
else:
    import _sipdo_codec as codec


class Outcomes:
    """Reports each test's outcome on the private channel."""

    def __init__(self, emit: Any) -> None:
        self.emit = emit

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or report.failed or report.skipped:
            o, msg = codec.outcome_of([report])
            self.emit({"test": report.nodeid, "o": o, "msg": msg})

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            msg = str(report.longrepr)[-400:]
            self.emit({"test": report.nodeid or "<collection>", "o": "failed", "msg": msg})


def main() -> None:
    request, emit = codec.boot()
    import pytest

    args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", request["tests_file"]]
    code = pytest.main(args, plugins=[Outcomes(emit)])
    emit({"exit": int(code)})
    emit({"done": True})
    sys.stdout.flush()


if __name__ == "__main__":
    main()
