"""An optimizer model for contract tests that answers any strategy's request.

It reads what the request asks for: a JSON schema (``format_instruction``) gets a
minimal valid instance whose strings carry ``TOKEN``; anything else gets a reply
holding every free-text layout the built-in strategies read (a ``<prompt>`` block
with a rationale, and a search/replace edit). ``TOKEN`` is what the scripted
learner of ``tests.graph.world`` needs to see to answer right.
"""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.messages import BaseMessage

from sipdo.testing import ScriptedChatModel

TOKEN = "FIX"
RULE = f"State the edge cases before coding. {TOKEN}"
_SCHEMA = re.compile(r"matching this JSON schema:\n(\{.*\})\s*$", re.DOTALL)


def instance(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A minimal value valid under ``schema`` (objects, arrays, strings, numbers, refs)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return instance(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return instance(schema[key][0], defs)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "string")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: instance(sub, defs) for name, sub in props.items()}
    if kind == "array":
        return [instance(schema.get("items", {}), defs)] * max(1, schema.get("minItems", 1))
    if kind in ("integer", "number"):
        return max(0, schema.get("minimum", 0))
    if kind == "boolean":
        return True
    return RULE


def reply(messages: list[BaseMessage]) -> str:
    text = str(messages[-1].content)
    found = _SCHEMA.search(text)
    if found:
        return json.dumps(instance(json.loads(found.group(1))))
    return (
        f"<prompt>\nYou write Python functions.\n{RULE}\n</prompt>\nRATIONALE: a general rule\n\n"
        f"<<<<<<< SEARCH\nYou write Python functions.\n=======\n"
        f"You write Python functions.\n{RULE}\n>>>>>>> REPLACE\n"
    )


def omni_model() -> ScriptedChatModel:
    return ScriptedChatModel(responder=reply, name="optimizer")
