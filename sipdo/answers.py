"""Answers: what a domain's solver returns, a string or JSON-safe structured data.

``Answer`` is ``str`` or dicts (string keys) and lists of str, int, finite float,
bool and None, nested: it goes into graph state, the run store and exports as it
is (the ``qa`` domain's ``{"final_answers": [...]}``). ``check_answer`` refuses
anything else with a ``PluginError`` naming where the bad value is (a domain
that returns it has a bug; it is not a wrong answer). ``answer_text`` is an
answer's text form, for prompts and text columns.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sipdo.errors import PluginError

Answer = str | dict[str, Any] | list[Any]

_JSON_HELP = "an answer is a str, or dicts (str keys) and lists of str, int, float, bool, None"


def _json_problem(value: Any, where: str) -> str | None:
    """Where ``value`` stops being JSON-safe, or None."""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is {value!r}, not a JSON number"
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has the key {key!r} ({type(key).__name__}), not a string"
            problem = _json_problem(item, f"{where}[{key!r}]")
            if problem:
                return problem
        return None
    return f"{where} is a {type(value).__name__}"


def check_answer(answer: Any, *, source: str = "the domain") -> Answer:
    """``answer`` if it is an ``Answer``; ``PluginError`` naming the bad value otherwise
    (tuples inside become lists, as JSON would read them back)."""
    if isinstance(answer, str):
        return answer
    if not isinstance(answer, dict | list):
        raise PluginError(
            f"{source} returned an answer of type {type(answer).__name__}: {_JSON_HELP}"
        )
    try:
        problem = _json_problem(answer, "answer")
    except RecursionError:
        problem = "answer is nested too deeply (or holds itself)"
    if problem:
        raise PluginError(
            f"{source} returned an answer that is not JSON-safe: {problem} ({_JSON_HELP})"
        )
    loaded: Answer = json.loads(json.dumps(answer))
    return loaded


def answer_text(answer: Any) -> str:
    """An answer as text: a string as it is, structured data as compact sorted JSON."""
    if isinstance(answer, str):
        return answer
    return json.dumps(answer, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
