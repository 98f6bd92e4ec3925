"""The offline test hook of ``sipdo run``: ``--model scripted:/path/to/script.json``.

Not a user feature (it is left out of ``--help``); it lets tests drive a real
``sipdo run`` subprocess with ``sipdo.testing.ScriptedChatModel``. The file holds
either a JSON list of responses (replayed in order), or an object::

    {"delay_s": 0.2,
     "responses": [...],                      # in order, or instead:
     "rules": [{"match": "text" | ["a", "b"], "response": ...}, ...]}

With ``rules`` each call is answered by the first rule whose ``match``
substrings all occur in the call's messages (a rule without ``match`` is a
catch-all). Rules answer the same messages the same way in every process,
which is what a run resumed after a kill needs: it repeats the calls of the
step that was interrupted. Every role given the same spec shares one model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from sipdo.errors import ConfigurationError, ScriptExhaustedError

PREFIX = "scripted:"


def _text(messages: list[BaseMessage]) -> str:
    parts: list[str] = []
    for m in messages:
        content = m.content
        if isinstance(content, str):
            parts.append(content)
        else:
            parts.extend(p if isinstance(p, str) else str(p.get("text", "")) for p in content)
    return "\n".join(parts)


def _responder(rules: list[Any], path: str) -> Callable[[list[BaseMessage]], Any]:
    checked: list[tuple[list[str], Any]] = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or "response" not in rule:
            raise ConfigurationError(f"{path}: rule {i} needs a 'response'")
        match = rule.get("match", [])
        needles = [match] if isinstance(match, str) else match
        if not isinstance(needles, list) or not all(isinstance(n, str) for n in needles):
            raise ConfigurationError(f"{path}: rule {i} 'match' must be a string or strings")
        checked.append((needles, rule["response"]))

    def respond(messages: list[BaseMessage]) -> Any:
        text = _text(messages)
        for needles, response in checked:
            if all(n in text for n in needles):
                return response
        return ScriptExhaustedError(f"{path}: no scripted rule matches a call: {text[:300]!r}")

    return respond


def load_scripted(spec: str) -> BaseChatModel:
    """A ``ScriptedChatModel`` from ``scripted:<path>``; ConfigurationError for a bad file."""
    from sipdo.testing import ScriptedChatModel

    path = spec.removeprefix(PREFIX)
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read model script {path}: {exc}") from exc
    if isinstance(data, list):
        data = {"responses": data}
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: a model script is a JSON list or object")
    delay = data.get("delay_s", 0.0)
    if not isinstance(delay, int | float) or delay < 0:
        raise ConfigurationError(f"{path}: 'delay_s' must be a number >= 0")
    if "rules" in data:
        if not isinstance(data["rules"], list):
            raise ConfigurationError(f"{path}: 'rules' must be a list")
        return ScriptedChatModel(responder=_responder(data["rules"], path), delay_s=float(delay))
    responses = data.get("responses", [])
    if not isinstance(responses, list):
        raise ConfigurationError(f"{path}: 'responses' must be a list")
    return ScriptedChatModel(responses, delay_s=float(delay))


def materialize(specs: dict[str, str | None]) -> dict[str, Any]:
    """``specs`` with every ``scripted:`` spec replaced by its model (one per distinct spec)."""
    made: dict[str, BaseChatModel] = {}
    out: dict[str, Any] = {}
    for role, spec in specs.items():
        if spec is not None and spec.startswith(PREFIX):
            if spec not in made:
                made[spec] = load_scripted(spec)
            out[role] = made[spec]
        else:
            out[role] = spec
    return out
