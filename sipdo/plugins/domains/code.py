"""The built-in ``code`` domain: Python functions with reference solutions and pytest tests."""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field, ValidationError

from sipdo.errors import ConfigurationError
from sipdo.plugins.domains.base import BaseDomain, SandboxProvider, Task, VerdictDict
from sipdo.structured import (
    PYTHON_TAGS,
    ReplyFormat,
    extract_code,
    fenced_blocks,
    json_format,
    parse_structured,
)
from sipdo.verifiers.types import CodeTask

if TYPE_CHECKING:
    from sipdo.verifiers import VerifierConfig

GENERATOR_SYSTEM = (
    "You write new Python coding tasks that expose a specific weakness of a solver. "
    "Each task is one function: a signature with a precise docstring, a correct reference "
    "solution, and pytest tests that import the function with `from solution import NAME` "
    "and pin down the tricky cases. Tasks must be unambiguous and self-contained."
)


DEFAULT_PROMPT = (
    "You are a careful Python programmer. Write a complete, correct implementation of the "
    "requested function that handles every case its docstring describes. Reply with code only."
)

CHECKER_PROMPT = (
    "You are an independent checker. Solve the task exactly as its specification says, "
    "handling every edge case it mentions. Answer with working code only."
)


class GeneratedCodeTask(BaseModel):
    """What the generator returns for one coding task."""

    prompt: str = Field(description="Function signature and docstring, no body.")
    entry_point: str = Field(description="Name of the function.")
    reference_solution: str = Field(description="Complete module source defining the function.")
    tests: str = Field(description="pytest source; imports the function from `solution`.")
    weakness: str = Field(default="", description="The weakness this task targets.")
    precondition: str = Field(
        default="",
        description="Boolean Python expression over the parameters that every valid input "
        "satisfies (the input contract; empty: inferred from the tests).",
    )


MARKDOWN_LAYOUT = """

Reply in exactly this layout, nothing else:

WEAKNESS: <the weakness this task targets, one short line>
PRECONDITION: <one Python boolean expression over the parameters that every valid input \
satisfies, e.g. len(xs) == len(ys) and n > 1; True if every input is valid>

```python
def function_name(arg: type) -> type:
    \"\"\"Precise statement of the behaviour, including every edge case.\"\"\"
    <correct reference implementation>
```

```python
from solution import function_name

def test_<case>():
    assert function_name(...) == ...
```"""

MARKDOWN_RETRY = (
    "Reply again in the layout: a WEAKNESS line, one ```python block with the function "
    "(docstring included) and one ```python block of pytest tests that import it from solution."
)

_IMPORTED = re.compile(r"^\s*from\s+solution\s+import\s+\(?\s*([A-Za-z_]\w*)", re.MULTILINE)
_WEAKNESS = re.compile(r"^[\s*#>_-]*weakness[\s*_]*:[\s*_]*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_PRECONDITION = re.compile(
    r"^[\s*#>_-]*precondition[\s*_]*:[\s*_`]*(.+?)[\s`]*$", re.IGNORECASE | re.MULTILINE
)


def statement_of(source: str, entry_point: str) -> str:
    """The task statement hidden in a reference solution: the signature and docstring
    of ``entry_point``, after the imports its signature uses (``from typing import
    List``); ``ValueError`` if there is no such function or no docstring."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(
            f"the reference solution does not parse: {exc.msg} (line {exc.lineno})"
        ) from None
    lines = source.splitlines()
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == entry_point:
            if ast.get_docstring(node) is None:
                raise ValueError(
                    f"{entry_point}() has no docstring: the docstring is the task statement "
                    "the solver sees, so it must state the behaviour precisely"
                )
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            doc_end = node.body[0].end_lineno or node.body[0].lineno
            head = "\n".join(lines[first - 1 : doc_end])
            signature = "\n".join(lines[first - 1 : node.body[0].lineno - 1])
            used = [
                ast.get_source_segment(source, imp) or ""
                for imp in imports
                if any(
                    re.search(rf"\b{re.escape((a.asname or a.name).split('.')[0])}\b", signature)
                    for a in imp.names
                )
            ]
            return "\n".join([*used, "", head] if used else [head]).strip() + "\n"
    raise ValueError(f"the reference solution does not define {entry_point}()")


def parse_generated_markdown(text: str) -> GeneratedCodeTask:
    """A ``GeneratedCodeTask`` from the markdown layout (``MARKDOWN_LAYOUT``): the tests
    are the last block importing from ``solution`` whose function another block
    defines, that block is the reference, its signature and docstring the statement. A reply without
    such blocks but with a JSON object is read as JSON. ``ValueError`` says what is
    missing."""
    blocks = [body for lang, body in fenced_blocks(text) if lang in (*PYTHON_TAGS, "")]
    test_blocks = [b for b in reversed(blocks) if _IMPORTED.search(b)]
    if not test_blocks:
        if "{" in text:
            try:
                return parse_structured(text, GeneratedCodeTask)
            except ValueError:
                pass
        raise ValueError(
            "no ```python block of pytest tests that imports the function with "
            "`from solution import <name>`"
        )
    # A reply may hold several attempts (or repeat the failed task): take the last
    # block of tests whose function some other block defines.
    names: list[str] = []
    for tests in test_blocks:
        name = _IMPORTED.findall(tests)[0]
        define = re.compile(rf"^\s*(async\s+)?def\s+{re.escape(name)}\s*\(", re.MULTILINE)
        reference = next((b for b in blocks if b is not tests and define.search(b)), None)
        if reference is not None:
            break
        names.append(name)
    else:
        wanted = ", ".join(f"{n}()" for n in dict.fromkeys(names))
        raise ValueError(
            f"the tests import {wanted} but no other ```python block defines it "
            "(the reference solution, with its docstring)"
        )
    weakness = _WEAKNESS.search(text)
    precondition = _PRECONDITION.search(text)
    return GeneratedCodeTask(
        prompt=statement_of(reference, name),
        entry_point=name,
        reference_solution=reference.strip() + "\n",
        tests=tests.strip() + "\n",
        weakness=weakness.group(1).strip("*_ ") if weakness else "",
        precondition=precondition.group(1).strip("*_ ") if precondition else "",
    )


def render_markdown(task: Mapping[str, Any]) -> str:
    """A task in the generator's markdown layout: the reference with the statement's
    signature and docstring in place of its own, then the tests (the inverse of
    ``parse_generated_markdown``)."""
    source = str(task["reference_solution"]).rstrip()
    lines = source.splitlines()
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a broken user seed: shown as it is
        tree = ast.Module(body=[], type_ignores=[])
    node = next(
        (
            n
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.name == task["entry_point"]
        ),
        None,
    )
    if node is not None:
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        before = lines[: first - 1]
        head = [line for line in str(task["prompt"]).rstrip().splitlines() if line not in before]
        after = lines[body[0].lineno - 1 :] if body else ["    pass"]
        source = "\n".join([*before, *head, *after]).strip()
    return (
        f"WEAKNESS: {task.get('weakness') or 'edge cases'}\n\n"
        f"```python\n{source}\n```\n\n```python\n{str(task['tests']).rstrip()}\n```"
    )


def _usable_precondition(text: str, reference: str, entry: str) -> str:
    """The generator's precondition if it parses (``True`` means none); otherwise empty, so
    the contract is inferred from the tests (a bad line never costs the task)."""
    from sipdo.verifiers.contract import check_precondition_source

    text = text.strip()
    if not text or text in ("True", "None", "none", "-"):
        return ""
    try:
        node = next(
            n
            for n in ast.parse(reference).body
            if isinstance(n, ast.FunctionDef) and n.name == entry
        )
        params = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
    except (SyntaxError, StopIteration):
        return ""
    return "" if check_precondition_source(text, params) else text


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


class CodeDomain(BaseDomain):
    """Coding tasks graded by ``sipdo.verifiers`` in the sandbox.

    ``verifier_config`` tunes the verifiers (Hypothesis examples, mutants, time
    budgets); None keeps their defaults. ``generator_format`` is how the generator
    writes a task: ``"markdown"`` (default: a WEAKNESS line and two ```python
    blocks, the function with its docstring and the tests; code needs no JSON
    escaping, and the statement is read from the docstring instead of being written
    twice) or ``"json"`` (one ``GeneratedCodeTask`` object, decoded under a JSON
    grammar where the backend supports it). Measured with the local 1.5B model:
    the same task took 226 tokens / 51 s as markdown against 424 tokens / 107 s as
    constrained JSON.
    """

    name = "code"
    max_difficulty = 5
    generated_schema: type[BaseModel] = GeneratedCodeTask
    default_prompt = DEFAULT_PROMPT
    checker_prompt = CHECKER_PROMPT
    hidden_fields = ("reference_solution", "tests")

    def __init__(
        self,
        verifier_config: VerifierConfig | None = None,
        *,
        generator_format: Literal["markdown", "json"] = "markdown",
    ) -> None:
        if generator_format not in ("markdown", "json"):
            raise ConfigurationError(
                f"generator_format must be 'markdown' or 'json', got {generator_format!r}"
            )
        self.verifier_config = verifier_config
        self.generator_format = generator_format

    def generated_format(self) -> ReplyFormat[GeneratedCodeTask]:
        """How the generator's reply is asked for and parsed (see ``generator_format``)."""
        if self.generator_format == "json":
            return json_format(GeneratedCodeTask)
        return ReplyFormat(
            schema=GeneratedCodeTask,
            instruction=MARKDOWN_LAYOUT,
            parse=parse_generated_markdown,
            retry=MARKDOWN_RETRY,
        )

    def seed_tasks(self) -> list[Task]:
        """The ~8 small original tasks shipped in ``code_seeds.jsonl``."""
        text = files("sipdo.plugins.domains").joinpath("code_seeds.jsonl").read_text("utf-8")
        return [self.validate_task(json.loads(line)) for line in text.splitlines() if line.strip()]

    def validate_task(self, data: Mapping[str, Any]) -> Task:
        """Normal form of a user task; ``ConfigurationError`` names the bad field."""
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"a code task must be an object, got {type(data).__name__}")
        try:
            task = CodeTask.model_validate(dict(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "<task>"
            raise ConfigurationError(f"invalid code task ({where}): {first['msg']}") from exc
        return task.model_dump(mode="json")

    def task_from_generated(
        self, generated: BaseModel, *, difficulty: int, weakness: str, provenance: Mapping[str, Any]
    ) -> Task:
        """A ``CodeTask`` dict; ``ValueError`` if the entry point or the tests are unusable."""
        gen = GeneratedCodeTask.model_validate(generated.model_dump())
        entry = gen.entry_point.strip()
        if not entry.isidentifier():
            raise ValueError(f"entry point {entry!r} is not a Python identifier")
        if not re.search(rf"\bdef\s+{re.escape(entry)}\b", gen.reference_solution):
            raise ValueError(f"the reference solution does not define {entry}()")
        if "solution" not in gen.tests or entry not in gen.tests:
            raise ValueError(f"the tests do not import {entry} from solution")
        task = CodeTask(
            prompt=gen.prompt.strip() + "\n",
            entry_point=entry,
            reference_solution=extract_code(gen.reference_solution, entry),
            tests=extract_code(gen.tests),
            difficulty=difficulty,
            weakness=gen.weakness.strip() or weakness,
            provenance=dict(provenance),
            precondition=_usable_precondition(gen.precondition, gen.reference_solution, entry),
        )
        return task.model_dump(mode="json")

    def dedup_key(self, task: Task) -> str:
        raw = _normalize(str(task.get("prompt", ""))) + "\x1f" + str(task.get("entry_point", ""))
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]

    def solve_messages(self, task: Task, system_prompt: str) -> list[BaseMessage]:
        return [
            SystemMessage(content=system_prompt),
            HumanMessage(
                content="Implement this Python function. Reply with the complete module in one "
                f"```python block.\n\n{task['prompt']}"
            ),
        ]

    def parse_answer(self, task: Task, text: str) -> str:
        return extract_code(text, str(task.get("entry_point") or "") or None)

    def generate_messages(
        self,
        *,
        target: Mapping[str, Any] | None,
        difficulty: int,
        examples: Sequence[Task],
        rejections: Sequence[str] = (),
    ) -> list[BaseMessage]:
        if target is None:
            aim = "The solver solved everything so far: write a harder task on a new edge case."
        else:
            task = target.get("task") or {}
            old_name = str(task.get("entry_point") or "the failed function")
            weakness = str(task.get("weakness") or "") or "the failure below"
            feedback = str((target.get("verdict") or {}).get("feedback", ""))[:600]
            aim = (
                f"The solver failed a task on this weakness: {weakness}.\n"
                f"What went wrong in `{old_name}`: {feedback}\n\n"
                f"Write a NEW task: a different function (not `{old_name}`) that tests the "
                "same weakness in another setting."
            )
        known = ", ".join(sorted({str(t.get("entry_point")) for t in examples})[:30])
        if rejections:
            aim += "\n\nRecent tasks were rejected by the verifier; avoid these problems:\n"
            aim += "\n".join(f"- {r[:300]}" for r in rejections)
        shown = ""
        if self.generator_format == "markdown":
            avoid = str((target or {}).get("task", {}).get("entry_point", ""))
            example = next((t for t in examples if t.get("entry_point") != avoid), None)
            if example is not None:
                shown = (
                    "\n\nA finished task in the reply layout, for a different weakness "
                    f"(do not copy it):\n\n{render_markdown(example)}"
                )
        return [
            SystemMessage(content=GENERATOR_SYSTEM),
            HumanMessage(
                content=f"{aim}\n\nDifficulty: {difficulty} on a 1-{self.max_difficulty} scale "
                f"(one above the last accepted level). Do not reuse these function names: "
                f"{known or '(none)'}. Name the weakness the task targets. Keep the tests "
                "short and check every expected value by hand: a wrong expected value gets "
                f"the task rejected.{shown}"
            ),
        ]

    def describe_failure(self, failure: Mapping[str, Any]) -> str:
        task = failure.get("task") or {}
        verdict = failure.get("verdict") or {}
        answer = str(failure.get("answer", ""))[:1200]
        return (
            f"Task {task.get('id')} (weakness: {task.get('weakness') or 'unknown'}):\n"
            f"{task.get('prompt', '')}\nSolver's answer:\n{answer}\n"
            f"Verifier feedback: {str(verdict.get('feedback', ''))[:800]}"
        )

    async def averify_task(
        self,
        task: Task,
        *,
        checker_answer: str | None,
        sandbox: SandboxProvider,
        checker_answers: Sequence[str] = (),
    ) -> VerdictDict:
        from sipdo.verifiers import averify_task

        verdict = await averify_task(
            CodeTask.model_validate(task),
            sandbox=await sandbox.get(),
            checker_solution=checker_answer,
            config=self.verifier_config,
        )
        return verdict.model_dump(mode="json")

    async def averify_answer(
        self, task: Task, answer: str, *, sandbox: SandboxProvider
    ) -> VerdictDict:
        from sipdo.verifiers import averify_solution

        verdict = await averify_solution(
            CodeTask.model_validate(task),
            answer,
            sandbox=await sandbox.get(),
            config=self.verifier_config,
        )
        return verdict.model_dump(mode="json")
