"""Prompt candidates as named text components: ids, rendering, diffs, specificity flags.

A candidate is ``{"instructions": ..., "demonstrations": ...}`` (any names a
strategy or domain declares) plus its lineage. What the solver sees as its system
prompt is ``render(components)``: the non-empty text components in order,
separated by a blank line. ``demonstrations`` is not text: it lists the ids of
verified (task, answer) pairs the solver sees as earlier turns of the
conversation (``sipdo.plugins.optimizers.demos``). Everything here is pure and
JSON-safe.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sipdo import pycode
from sipdo.verifiers.types import content_id

INSTRUCTIONS = "instructions"
DEMONSTRATIONS = "demonstrations"
DEMOS = DEMONSTRATIONS  # the name this module first reserved


def render(components: Mapping[str, str]) -> str:
    """The system prompt a solver sees: the non-empty text components in order,
    blank-line separated (``demonstrations`` are shown as turns, not here)."""
    return "\n\n".join(
        text.strip()
        for name, text in components.items()
        if name != DEMONSTRATIONS and text and text.strip()
    )


def demonstration_ids(components: Mapping[str, str]) -> list[str]:
    """The demonstration ids a candidate carries, in order (one per line or space)."""
    return list(dict.fromkeys(str(components.get(DEMONSTRATIONS, "")).split()))


def full_text(components: Mapping[str, str]) -> str:
    """Everything a candidate is, as text: the rendered prompt, then its demonstrations
    (what lineage diffs and ids are taken of)."""
    ids = demonstration_ids(components)
    text = render(components)
    return f"{text}\n\n[demonstrations] {' '.join(ids)}" if ids else text


def candidate_id(components: Mapping[str, str], parent_ids: Sequence[str]) -> str:
    """Content-derived id: the same components from the same parents get the same id.

    For one parent and no demonstrations this equals the id the loop always gave a
    prompt version (``content_id(parent, text, prefix="pv")``), so ids stay stable
    across versions.
    """
    return content_id(",".join(parent_ids), full_text(components), prefix="pv")


def unified_diff(old: str, new: str, old_name: str = "parent", new_name: str = "candidate") -> str:
    """A unified diff of two prompt texts ("" when equal)."""
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=old_name, tofile=new_name, lineterm=""
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class NewCandidate:
    """A candidate a strategy proposes: components, parents and the operator that made it.

    ``parent_ids`` may hold several ids (merge, crossover). ``notes`` is JSON-safe
    and kept with the candidate (e.g. the error analysis it came from).
    """

    components: Mapping[str, str]
    parent_ids: Sequence[str]
    operator: str
    rationale: str = ""
    notes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return candidate_id(self.components, self.parent_ids)

    @property
    def text(self) -> str:
        return render(self.components)


def as_state(
    cand: NewCandidate,
    parents: Mapping[str, Mapping[str, Any]],
    *,
    tasks: Iterable[Mapping[str, Any]] = (),
    iteration: int = 0,
    step: int = 0,
) -> dict[str, Any]:
    """The JSON record of a new candidate (``CandidateState``): diffs to each known
    parent and the specificity flags of its instructions."""
    text = cand.text
    diffs = {
        pid: unified_diff(_full_text_of(parents[pid]), full_text(cand.components), pid, cand.id)
        for pid in cand.parent_ids
        if pid in parents
    }
    return {
        "id": cand.id,
        "text": text,
        "components": {k: str(v) for k, v in cand.components.items()},
        "parent_ids": list(cand.parent_ids),
        "operator": cand.operator,
        "rationale": cand.rationale,
        "notes": dict(cand.notes),
        "diffs": diffs,
        "flags": specificity_flags(cand.components.get(INSTRUCTIONS, ""), tasks),
        "iteration": iteration,
        "step": step,
    }


def _full_text_of(record: Mapping[str, Any]) -> str:
    components = record.get("components")
    return full_text(components) if components else str(record.get("text", ""))


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names too common in prompts to call task-specific.
_COMMON = frozenset(
    {"solution", "function", "return", "python", "test", "tests", "input", "output", "main"}
)


def _test_literals(tests: str) -> set[str]:
    """String literals (4+ characters) and numbers (3+ digits) in a task's tests."""
    found: set[str] = set()
    try:
        tree = pycode.parse(tests)
    except SyntaxError:
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, str) and len(value.strip()) >= 4 and "\n" not in value:
                found.add(value)
            elif (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and len(str(abs(value)).replace(".", "")) >= 3
            ):
                found.add(str(value))
    return found


def _stem(word: str) -> str:
    """A crude stem, enough to see "merging" in ``merge`` and "intervals" in ``interval``."""
    return word.lower()[: max(4, len(word) - 3)]


def _names(name: str, text: str, words: set[str]) -> bool:
    """Whether ``text`` names the function ``name``.

    A one-word lower-case name ("clamp", "rotate") is also an English word a
    general rule may use, so it counts only written as code: in backticks or called.
    """
    if name not in words:
        return False
    if "_" in name or not name.islower() or not name.isalpha():
        return True
    return re.search(rf"`{name}`|(?<!\w){name}\s*\(", text) is not None


def _paraphrases(name: str, text: str) -> bool:
    """Whether one sentence of ``text`` holds every content word of a snake_case ``name``.

    Only names of two or more content words count: "rotate" alone is a fair word
    for a general rule, "merge ... intervals" in one sentence is the task itself.
    """
    parts = [p for p in name.split("_") if len(p) >= 4 and p.lower() not in _COMMON]
    if len(parts) < 2:
        return False
    stems = [_stem(p) for p in parts]
    for sentence in re.split(r"(?<=[.!?;])\s+|\n+", text):
        words = [w.lower() for w in _IDENT.findall(sentence)]
        if all(any(w.startswith(stem) for w in words) for stem in stems):
            return True
    return False


# A worked example in the instructions: a definition or a doctest call of one function.
_EXAMPLE = re.compile(r"(?:\bdef\s+|>>>\s*)([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def specificity_flags(text: str, tasks: Iterable[Mapping[str, Any]]) -> list[str]:
    """What makes ``text`` (instructions) specific to the training tasks, not general.

    A rule that names a task's function (``merge_intervals``), paraphrases it in
    one sentence ("sort the intervals before merging"), repeats a value from its
    tests, or carries a worked example of one particular function (``>>>
    sum_pairs([1, 2])``) is one an optimizer wrote for a task: it rarely
    transfers to unseen problems, so the flag joins the candidate's textual
    reward (and, unless the run allows it, keeps it from being promoted).
    """
    if not text:
        return []
    words = set(_IDENT.findall(text))
    flags: list[str] = []
    for task in tasks:
        name = str(task.get("entry_point") or "")
        if len(name) >= 4 and name.lower() not in _COMMON and _names(name, text, words):
            flags.append(f"names the task function {name!r}")
        elif _paraphrases(name, text):
            flags.append(f"paraphrases the task function {name!r}")
        for literal in sorted(_test_literals(str(task.get("tests") or ""))):
            pattern = rf"(?<!\w)(?<!\d\.){re.escape(literal)}(?!\w)(?!\.\d)"
            if re.search(pattern, text):
                flags.append(f"repeats the test value {literal!r} of {name or task.get('id')}")
    for example in _EXAMPLE.findall(text):
        flags.append(f"carries a worked example of the function {example!r}")
    return list(dict.fromkeys(flags))
