"""The built-in ``code`` domain: Python functions with reference solutions and pytest tests.

Split by idea: ``prompts`` (what the models are told), ``layout`` (the generator's
reply: ``GeneratedCodeTask`` and its markdown layout, parsed and rendered) and
``domain`` (``CodeDomain``, the adapter to ``sipdo.verifiers``). Whether a source
defines the entry point is asked of ``sipdo.pycode.find_entry_point`` everywhere.
"""

from __future__ import annotations

from sipdo.plugins.domains.code.domain import CodeDomain
from sipdo.plugins.domains.code.layout import (
    GeneratedCodeTask,
    parse_generated_markdown,
    render_markdown,
    statement_of,
)
from sipdo.plugins.domains.code.prompts import (
    CHECKER_PROMPT,
    DEFAULT_PROMPT,
    GENERATOR_SYSTEM,
    MARKDOWN_LAYOUT,
    MARKDOWN_RETRY,
)

__all__ = [
    "CHECKER_PROMPT",
    "DEFAULT_PROMPT",
    "GENERATOR_SYSTEM",
    "MARKDOWN_LAYOUT",
    "MARKDOWN_RETRY",
    "CodeDomain",
    "GeneratedCodeTask",
    "parse_generated_markdown",
    "render_markdown",
    "statement_of",
]
