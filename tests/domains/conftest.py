"""Domain test fixtures: a real process sandbox shared by the module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sipdo.sandbox import ProcessSandbox, Sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """A real process sandbox: plans and derivations run there as in a real run."""
    with ProcessSandbox() as box:
        yield box
