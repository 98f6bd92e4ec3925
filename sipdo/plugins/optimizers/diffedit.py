"""Diff edits of a prompt as SEARCH/REPLACE blocks: parsing, applying, clear refusals. Pure.

The layout (the one code-editing models know)::

    <<<<<<< SEARCH
    text copied exactly from the prompt
    =======
    the text that replaces it
    >>>>>>> REPLACE

An empty SEARCH part appends its REPLACE part to the prompt. Anything that does
not apply cleanly — no block, a block left open, SEARCH text that is not in the
prompt or occurs more than once, an edit that changes nothing or empties the
prompt — raises ``DiffError`` whose message says which edit and why: the
candidate is rejected with that reason, never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_START = re.compile(r"^\s*<{5,9}\s*SEARCH\s*$")
_MIDDLE = re.compile(r"^\s*={5,9}\s*$")
_END = re.compile(r"^\s*>{5,9}\s*REPLACE\s*$")


class DiffError(ValueError):
    """A diff edit that cannot be applied; the message is the rejection reason."""


@dataclass(frozen=True)
class Edit:
    search: str
    replace: str


def parse_edits(text: str) -> list[Edit]:
    """Every SEARCH/REPLACE block of ``text``, in order (``DiffError`` if none or broken)."""
    edits: list[Edit] = []
    part: str | None = None  # None outside a block, else "search" / "replace"
    search: list[str] = []
    replace: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if _START.match(line):
            if part is not None:
                raise DiffError(f"line {number}: a new SEARCH block starts inside an open one")
            part, search, replace = "search", [], []
        elif _MIDDLE.match(line) and part == "search":
            part = "replace"
        elif _END.match(line):
            if part != "replace":
                raise DiffError(f"line {number}: REPLACE marker without SEARCH and =======")
            edits.append(Edit("\n".join(search), "\n".join(replace)))
            part = None
        elif part == "search":
            search.append(line)
        elif part == "replace":
            replace.append(line)
    if part is not None:
        raise DiffError("the last SEARCH/REPLACE block is not closed with >>>>>>> REPLACE")
    if not edits:
        raise DiffError("no SEARCH/REPLACE block in the reply")
    return edits


def _locate(text: str, search: str) -> tuple[int, int] | None:
    """Where ``search`` occurs once in ``text``: exactly, else ignoring each line's outer
    whitespace (models re-indent). ``DiffError`` when it occurs more than once."""
    count = text.count(search)
    if count > 1:
        raise DiffError(f"occurs {count} times in the prompt")
    if count == 1:
        start = text.index(search)
        return start, start + len(search)
    want = [s.strip() for s in search.strip("\n").splitlines()]
    lines = text.splitlines(keepends=True)
    hits: list[tuple[int, int]] = []
    for i in range(len(lines) - len(want) + 1):
        if [ln.strip() for ln in lines[i : i + len(want)]] == want:
            start = sum(len(ln) for ln in lines[:i])
            end = start + sum(len(ln) for ln in lines[i : i + len(want)])
            hits.append((start, end - (1 if lines[i + len(want) - 1].endswith("\n") else 0)))
    if len(hits) > 1:
        raise DiffError(f"occurs {len(hits)} times in the prompt")
    return hits[0] if hits else None


# The placeholders of the format's description (sipdo.plugins.optimizers.espl): a small
# model copies them into its blocks; applied, they would write the placeholder into the
# prompt.
PLACEHOLDERS = ("(lines copied exactly from the prompt)", "(the new lines)", "<one new rule>")


def apply_edits(text: str, edits: list[Edit]) -> str:
    """``text`` with every edit applied in order (``DiffError`` naming the failing edit)."""
    out = text
    for number, edit in enumerate(edits, 1):
        copied = [p for p in PLACEHOLDERS if p in edit.search or p in edit.replace]
        if copied:
            raise DiffError(
                f"edit {number} copies the format's placeholder {copied[0]!r} instead of "
                "text of its own"
            )
        if not edit.search.strip():
            out = f"{out.rstrip()}\n{edit.replace.strip()}".strip()
            continue
        try:
            where = _locate(out, edit.search)
        except DiffError as exc:
            raise DiffError(f"edit {number}: the SEARCH text {exc}") from None
        if where is None:
            raise DiffError(
                f"edit {number}: the SEARCH text is not in the prompt: {edit.search[:120]!r}"
            )
        out = out[: where[0]] + edit.replace + out[where[1] :]
    if not out.strip():
        raise DiffError("the edits leave the prompt empty")
    if out.strip() == text.strip():
        raise DiffError("the edits change nothing")
    return out.strip()


def apply_diff(text: str, reply: str) -> str:
    """Parse ``reply``'s SEARCH/REPLACE blocks and apply them to ``text``."""
    return apply_edits(text, parse_edits(reply))
