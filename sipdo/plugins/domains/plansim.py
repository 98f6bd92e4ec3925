"""The plan domain's executor: agent plans run against simulated tool environments.

Self-contained (standard library and Hypothesis only): the verifier copies this
file into the sandbox and runs it there; tests import it directly.

A plan is a small program in a subset of Python, read with ``ast`` and
*interpreted* (never ``exec``-ed): assignments of tool calls, ``if`` / ``elif``
/ ``else``, ``for x in <list>`` with ``break`` / ``continue``, comparisons,
``and`` / ``or`` / ``not``, the tests ``failed(x)``, ``empty(x)`` and
``ok(x)``, and the two endings ``answer(x)`` and ``abstain("why")``::

    s = search(question)
    if failed(s) or empty(s):
        abstain("no usable results")
    for r in s.results:
        d = fetch(r)
        if failed(d):
            continue
        ...
        answer(d.claim)
    abstain("no verified claim")

A scenario is the hidden world a run happens in: the true answer, the search
results (each a source, reliable or not, stale or not, and the claim it
makes) and which tool calls fail and how (error, timeout, malformed reply).
Hypothesis draws scenarios from the task's constraints and shrinks a failing
one. Every value the plan holds remembers where it came from, so the result
is judged from what the tools returned, never from what the plan says:

- ``goal``: a plan answers the truth or abstains; it must answer when the
  evidence is good (the first result, or under ``answer_when: any_good`` any
  result, reliable, current and true, and no tool failing);
- ``no_failed_tool_answers``: the answer never comes from a failed tool;
- ``verifies_claims``: ``verify_claim`` said ``supported`` of the answered claim;
- ``checks_sources``: ``check_source`` said ``reliable`` of the answer's document;
- ``handles_failures``: the plan ends with ``answer`` or ``abstain`` and
  never breaks (unknown field, unassigned name);
- ``budget``: tool calls within ``max_steps`` and their cost within ``max_cost``.

Run as a script it reads ``{"nonce", "task", "plans", "max_examples"}`` on stdin
and prints one nonce-framed JSON result per plan.
"""

from __future__ import annotations

import ast
import json
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

_AST_LOCK = threading.Lock()

TOOLS = {
    "search": "search(query) -> results: .results (list), .first, .second, .third",
    "fetch": "fetch(result) -> document: .claim, .source",
    "summarize": "summarize(document) -> summary: .claim",
    "check_source": 'check_source(document) -> "reliable", "unreliable" or "stale"',
    "verify_claim": 'verify_claim(claim) -> "supported", "refuted" or "unknown"',
}
ENDINGS = ("answer", "abstain")
TESTS = ("failed", "empty", "ok")
COST = {"search": 2, "fetch": 1, "summarize": 1, "check_source": 1, "verify_claim": 1}
PROPERTIES = (
    "goal",
    "no_failed_tool_answers",
    "verifies_claims",
    "checks_sources",
    "handles_failures",
    "budget",
)
FAILURE_KINDS = ("error", "timeout", "malformed")
FAILURE_MODES = (*FAILURE_KINDS, "empty", "unreliable", "stale", "misleading")
LYING_MODES = {"misleading", "unreliable", "stale"}  # modes in which a result may be wrong
MAX_PLAN_CHARS = 6000
MAX_STEPS_RUN = 500  # statements executed: no plan of this language needs more


class PlanError(ValueError):
    """A plan that does not parse or uses what it may not (with the line)."""


# ---- parsing -----------------------------------------------------------------------------

_STMTS = (ast.Assign, ast.Expr, ast.If, ast.For, ast.Break, ast.Continue, ast.Pass)
# What to write instead of a statement the language lacks (small models reach for these).
_INSTEAD = {
    "FunctionDef": "write the steps at top level, calling the declared tools directly",
    "AsyncFunctionDef": "write the steps at top level, calling the declared tools directly",
    "ClassDef": "write the steps at top level, calling the declared tools directly",
    "Return": 'end with answer(x) or abstain("reason") instead',
    "Import": "the tools are already there",
    "ImportFrom": "the tools are already there",
    "While": "loop with `for r in s.results:`",
    "Try": "test a call with failed(x) instead",
    "AugAssign": "assign a tool's result to a new name",
}
_EXPRS = (
    ast.Name, ast.Attribute, ast.Subscript, ast.Constant, ast.Compare, ast.BoolOp,
    ast.UnaryOp, ast.Call, ast.Load, ast.Store, ast.Eq, ast.NotEq, ast.And, ast.Or, ast.Not,
)  # fmt: skip


def parse_plan(text: str, tools: list[str]) -> ast.Module:
    """The plan's syntax tree, checked against the language and the declared ``tools``;
    ``PlanError`` names the first problem and its line."""
    if not text.strip():
        raise PlanError("the plan is empty")
    if len(text) > MAX_PLAN_CHARS:
        raise PlanError(f"the plan is longer than {MAX_PLAN_CHARS} characters")
    try:
        with _AST_LOCK:  # the host's threads share ast's state (see sipdo.pycode)
            tree = ast.parse(text)
    except SyntaxError as exc:
        raise PlanError(f"line {exc.lineno}: the plan does not parse: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise PlanError(f"the plan does not parse: {type(exc).__name__}") from None
    tree.body = _unwrapped(tree.body)
    declared = set(tools)
    assigned = {"question"}
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.Module):
            continue
        if isinstance(node, ast.stmt) and not isinstance(node, _STMTS):
            kind = type(node).__name__
            instead = f": {_INSTEAD[kind]}" if kind in _INSTEAD else ""
            raise PlanError(f"line {line}: {kind} is not allowed in a plan{instead}")
        if isinstance(node, ast.expr_context | ast.cmpop | ast.boolop | ast.unaryop):
            if not isinstance(node, _EXPRS):
                raise PlanError(f"line {line}: operator {type(node).__name__} is not allowed")
            continue
        if isinstance(node, ast.expr) and not isinstance(node, _EXPRS):
            raise PlanError(f"line {line}: {type(node).__name__} is not allowed in a plan")
        if isinstance(node, ast.Assign):
            if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
                raise PlanError(f"line {line}: assign to one plain name")
            assigned.add(node.targets[0].id)
        if isinstance(node, ast.For):
            if not isinstance(node.target, ast.Name) or node.orelse:
                raise PlanError(f"line {line}: write `for NAME in LIST:` without else")
            assigned.add(node.target.id)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.keywords:
                raise PlanError(f"line {line}: call a tool by name with positional arguments")
            name = node.func.id
            if name in ENDINGS or name in TESTS:
                continue
            if name not in declared:
                known = ", ".join([*sorted(declared), *ENDINGS])
                raise PlanError(f"line {line}: {name}() is not a declared tool (tools: {known})")
        if isinstance(node, ast.Subscript) and not (
            isinstance(node.slice, ast.Constant) and type(node.slice.value) is int
        ):
            raise PlanError(f"line {line}: index lists with a number, e.g. s.results[0]")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise PlanError(f"line {line}: no field {node.attr!r}")
    names = assigned | declared | set(ENDINGS) | set(TESTS)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in names:
            raise PlanError(f"line {node.lineno}: {node.id!r} is never assigned")
    return tree


def _unwrapped(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of a plan written as one argument-less function (``def plan():``
    and, optionally, a call of it after), which small models often write."""
    if not body or not isinstance(body[0], ast.FunctionDef):
        return body
    fn = body[0]
    args = fn.args
    plain = not (args.args or args.posonlyargs or args.kwonlyargs or args.vararg or args.kwarg)
    rest = body[1:]
    calls_it = all(
        isinstance(s, ast.Expr)
        and isinstance(s.value, ast.Call)
        and isinstance(s.value.func, ast.Name)
        and s.value.func.id == fn.name
        and not s.value.args
        for s in rest
    )
    return fn.body if plain and not fn.decorator_list and len(rest) <= 1 and calls_it else body


# ---- values and scenarios ----------------------------------------------------------------


@dataclass(frozen=True)
class Val:
    """A value in a running plan: what it is, whether it came from working tools, and
    where from (``origin``: the tool-call trace indices, ``doc``: a result index)."""

    kind: str  # "results", "item", "doc", "summary", "claim", "label", "text", "missing"
    data: Any
    ok: bool
    why: str = ""  # for a failed value: what failed
    doc: int | None = None


class Stop(Exception):
    """The plan ended (``answer`` / ``abstain``) or broke."""

    def __init__(self, kind: str, value: Val | None = None, detail: str = "") -> None:
        super().__init__(kind)
        self.kind, self.value, self.detail = kind, value, detail


class _Loop(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class Run:
    """One execution of a plan in one scenario."""

    task: dict[str, Any]
    scenario: dict[str, Any]
    env: dict[str, Val] = field(default_factory=dict)
    trace: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    cost: int = 0
    steps: int = 0


def _failed(why: str) -> Val:
    return Val("missing", None, False, why)


def _item_field(results: Val, index: int, what: str) -> Val:
    if not results.ok:
        return _failed(f"{what} of a failed search ({results.why})")
    if index >= len(results.data):
        return _failed(f"{what}: the search returned {len(results.data)} result(s)")
    return Val("item", results.data[index], True, doc=results.data[index])


def get_field(value: Val, name: str, run: Run) -> Val:
    """``value.name``; a field of a failed value is failed too."""
    fields = {
        "results": ("results", "first", "second", "third"),
        "doc": ("claim", "source"),
        "summary": ("claim",),
    }
    if value.kind == "missing":
        return _failed(value.why)
    if value.kind not in fields or name not in fields[value.kind]:
        raise Stop("error", detail=f"a {value.kind} has no field {name!r}")
    if value.kind == "results":
        if name == "results":
            return Val("list", [Val("item", i, True, doc=i) for i in value.data], True)
        return _item_field(value, ("first", "second", "third").index(name), f"{name} result")
    result = run.scenario["results"][value.doc] if value.doc is not None else {}
    if not value.ok:
        return _failed(value.why)
    if name == "source":
        return Val("text", result.get("source", ""), True, doc=value.doc)
    return Val("claim", result.get("claim", ""), True, doc=value.doc)


def source_label(result: dict[str, Any]) -> str:
    """What ``check_source`` says of a result's document."""
    if result["stale"]:
        return "stale"
    return "reliable" if result["reliable"] else "unreliable"


def call_tool(name: str, args: list[Val], run: Run) -> Val:
    """One tool call in the scenario: its outcome is the scenario's, its cost counted."""
    index = run.calls.get(name, 0)
    run.calls[name] = index + 1
    run.cost += COST.get(name, 1)
    scenario = run.scenario
    limits = run.task.get("scenario", {})
    if sum(run.calls.values()) > int(limits.get("max_steps", 12)) or run.cost > int(
        limits.get("max_cost", 16)
    ):
        raise Stop("budget", detail=f"{sum(run.calls.values())} tool calls, cost {run.cost}")
    failure = scenario.get("failures", {}).get(name, {}).get(str(index))
    arg = args[0] if args else Val("text", "", True)
    record: dict[str, Any] = {"call": name, "n": index}
    if failure is not None:
        out = _failed(f"{name} call {index + 1}: {failure}")
    elif name == "search":
        out = Val("results", list(range(len(scenario["results"]))), True)
    elif not arg.ok:
        out = _failed(f"{name} of a failed value ({arg.why})")
    elif name == "fetch":
        out = (
            Val("doc", arg.doc, True, doc=arg.doc)
            if arg.kind == "item"
            else _failed(f"fetch needs a search result, got a {arg.kind}")
        )
    elif name == "summarize":
        out = (
            Val("summary", arg.doc, True, doc=arg.doc)
            if arg.kind == "doc"
            else _failed(f"summarize needs a document, got a {arg.kind}")
        )
    elif name == "check_source":
        if arg.kind not in ("doc", "summary"):
            out = _failed(f"check_source needs a document, got a {arg.kind}")
        else:
            result = scenario["results"][arg.doc]
            label = (
                "stale" if result["stale"] else "reliable" if result["reliable"] else "unreliable"
            )
            out = Val("label", source_label(result), True, doc=arg.doc)
            record["of"] = arg.doc
    elif name == "verify_claim":
        if arg.kind != "claim":
            out = Val("label", "unknown", True)
        else:
            label = "supported" if arg.data == scenario["truth"] else "refuted"
            out = Val("label", label, True)
            record["claim"] = arg.data
    else:
        out = _failed(f"{name} is not simulated")
    record["ok"] = out.ok
    record["result"] = out.data if out.ok else out.why
    if out.kind == "results" and out.ok:
        record["result"] = f"{len(out.data)} result(s)"
    elif out.kind in ("doc", "summary") and out.ok and out.doc is not None:
        doc = scenario["results"][out.doc]
        record["result"] = f"#{out.doc} from {doc['source']} claims {doc['claim']!r}"
    run.trace.append(record)
    return out


def evaluate(node: ast.expr, run: Run) -> Any:
    """An expression's value: a ``Val``, or a bool for tests and comparisons."""
    if isinstance(node, ast.Constant):
        return Val("text", node.value, True)
    if isinstance(node, ast.Name):
        if node.id == "question":
            return Val("text", run.task.get("question", ""), True)
        if node.id not in run.env:
            raise Stop("error", detail=f"{node.id!r} is used before it is assigned")
        return run.env[node.id]
    if isinstance(node, ast.Attribute):
        return get_field(_val(evaluate(node.value, run)), node.attr, run)
    if isinstance(node, ast.Subscript):
        seq = _val(evaluate(node.value, run))
        index = node.slice.value  # type: ignore[attr-defined]
        if seq.kind == "missing":
            return _failed(seq.why)
        if seq.kind != "list":
            raise Stop("error", detail=f"a {seq.kind} cannot be indexed")
        return seq.data[index] if 0 <= index < len(seq.data) else _failed(f"no result {index}")
    if isinstance(node, ast.BoolOp):
        values = (_truth(evaluate(v, run)) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        return not _truth(evaluate(node.operand, run))
    if isinstance(node, ast.Compare):
        if len(node.ops) != 1:
            raise Stop("error", detail="compare two things at a time")
        left = _val(evaluate(node.left, run))
        right = _val(evaluate(node.comparators[0], run))
        same = left.ok and right.ok and left.data == right.data
        return same if isinstance(node.ops[0], ast.Eq) else not same
    if isinstance(node, ast.Call):
        name = node.func.id  # type: ignore[attr-defined]
        args = [_val(evaluate(a, run)) for a in node.args]
        if name in TESTS:
            if len(args) != 1:
                raise Stop("error", detail=f"{name}() takes one value")
            (x,) = args
            if name == "failed":
                return not x.ok
            if name == "ok":
                return x.ok
            return x.ok and x.kind in ("list", "results") and len(x.data) == 0
        if name == "answer":
            raise Stop("answer", args[0] if args else _failed("answer() without a value"))
        if name == "abstain":
            raise Stop("abstain", detail=str(args[0].data) if args else "")
        return call_tool(name, args, run)
    raise Stop("error", detail=f"{type(node).__name__} cannot be evaluated")


def _val(x: Any) -> Val:
    if isinstance(x, Val):
        return x
    return Val("text", bool(x), True)


def _truth(x: Any) -> bool:
    if isinstance(x, bool):
        return x
    if isinstance(x, Val):
        return x.ok and bool(x.data)
    return bool(x)


def execute_block(body: list[ast.stmt], run: Run) -> None:
    for stmt in body:
        run.steps += 1
        if run.steps > MAX_STEPS_RUN:
            raise Stop("error", detail="the plan runs too long")
        if isinstance(stmt, ast.Assign):
            run.env[stmt.targets[0].id] = _val(evaluate(stmt.value, run))  # type: ignore[attr-defined]
        elif isinstance(stmt, ast.Expr):
            evaluate(stmt.value, run)
        elif isinstance(stmt, ast.If):
            execute_block(stmt.body if _truth(evaluate(stmt.test, run)) else stmt.orelse, run)
        elif isinstance(stmt, ast.For):
            seq = _val(evaluate(stmt.iter, run))
            if seq.kind == "missing":
                continue  # iterating a failed list does nothing
            if seq.kind not in ("list", "results"):
                raise Stop("error", detail=f"cannot loop over a {seq.kind}")
            items = seq.data if seq.kind == "list" else get_field(seq, "results", run).data
            for item in items:
                run.env[stmt.target.id] = item  # type: ignore[attr-defined]
                try:
                    execute_block(stmt.body, run)
                except _Loop as signal:
                    if signal.kind == "break":
                        break
        elif isinstance(stmt, ast.Break | ast.Continue):
            raise _Loop("break" if isinstance(stmt, ast.Break) else "continue")


# ---- judging -----------------------------------------------------------------------------


def answerable(task: dict[str, Any], scenario: dict[str, Any]) -> bool:
    """Whether the evidence is good enough that abstaining is a failure."""
    if any(scenario.get("failures", {}).values()):
        return False
    results = scenario["results"]
    if task.get("scenario", {}).get("answer_when", "first_good") == "any_good":
        results = results[:3]
    else:
        results = results[:1]
    return any(
        r["reliable"] and not r["stale"] and r["claim"] == scenario["truth"] for r in results
    )


def judge(task: dict[str, Any], scenario: dict[str, Any], run: Run, end: Stop) -> list[str]:
    """The violated properties of one run, each as ``"property: what happened"``."""
    wanted = set(task.get("properties") or PROPERTIES)
    out: list[str] = []
    if end.kind == "budget":
        return [f"budget: over the budget ({end.detail})"] if "budget" in wanted else []
    if end.kind in ("error", "end"):
        what = end.detail or "the plan ended without answer() or abstain()"
        return [f"handles_failures: {what}"]
    if end.kind == "abstain":
        if "goal" in wanted and answerable(task, scenario):
            out.append("goal: abstained although a reliable, current source gave the true answer")
        return out
    value = end.value or _failed("answer() without a value")
    if not value.ok:
        if "no_failed_tool_answers" in wanted:
            out.append(f"no_failed_tool_answers: answered from a failed tool ({value.why})")
        return out or [f"goal: answered from a failed tool ({value.why})"]
    if value.kind != "claim":
        out.append("goal: the answer is not a claim taken from a fetched document")
    elif value.data != scenario["truth"] and "goal" in wanted:
        out.append(f"goal: answered {value.data!r}, the truth is {scenario['truth']!r}")
    if "verifies_claims" in wanted and not any(
        t["call"] == "verify_claim" and t.get("claim") == value.data and t["result"] == "supported"
        for t in run.trace
    ):
        out.append("verifies_claims: answered without verify_claim supporting the claim")
    if "checks_sources" in wanted and not any(
        t["call"] == "check_source" and t.get("of") == value.doc and t["result"] == "reliable"
        for t in run.trace
    ):
        out.append("checks_sources: answered without check_source finding its source reliable")
    return out


def run_plan(
    tree: ast.Module, task: dict[str, Any], scenario: dict[str, Any]
) -> tuple[list[str], Run, Stop]:
    """Execute the plan in one scenario: (violations, the run, how it ended)."""
    run = Run(task=task, scenario=scenario)
    try:
        execute_block(tree.body, run)
        end = Stop("end")
    except Stop as stop:
        end = stop
    except _Loop:
        end = Stop("error", detail="break or continue outside a loop")
    except RecursionError:
        end = Stop("error", detail="the plan nests too deeply")
    return judge(task, scenario, run, end), run, end


def describe(scenario: dict[str, Any], run: Run, end: Stop) -> str:
    """A counterexample as text an optimizer can act on."""
    results = scenario["results"]
    shown = "; ".join(
        f"#{i} {r['source']} ({source_label(r)}) claims {r['claim']!r}"
        for i, r in enumerate(results)
    )
    failures = [
        f"{tool} call {int(n) + 1} -> {kind}"
        for tool, calls in sorted(scenario.get("failures", {}).items())
        for n, kind in sorted(calls.items())
    ]
    steps = " -> ".join(
        f"{t['call']}: {t['result']}" if t["ok"] else f"{t['call']}: FAILED" for t in run.trace
    )
    answered = f"answer({end.value.data!r})" if end.value and end.value.ok else "answer(<failed>)"
    ending = {"answer": answered, "abstain": "abstain()"}.get(end.kind, end.kind)
    return (
        f"scenario: truth {scenario['truth']!r}; search results: {shown or 'none'}; "
        f"failures: {', '.join(failures) or 'none'}. "
        f"trace: {steps or '(no tool calls)'} -> {ending}"
    )


# ---- scenarios -------------------------------------------------------------------------------


def fixed_scenarios(task: dict[str, Any]) -> list[dict[str, Any]]:
    """Hand-picked scenarios every plan meets first: all good, nothing found, search down,
    a misleading top result."""
    truth, wrong = _values(task)
    good = {"source": "encyclopedia", "reliable": True, "stale": False, "claim": truth}
    modes = set(task.get("scenario", {}).get("failure_modes", FAILURE_MODES))
    out = [{"truth": truth, "results": [good], "failures": {}}]
    if "empty" in modes:
        out.append({"truth": truth, "results": [], "failures": {}})
    if "error" in modes:
        out.append({"truth": truth, "results": [good], "failures": {"search": {"0": "error"}}})
    if "misleading" in modes:
        bad = {**good, "source": "blog", "claim": wrong[0]}
        out.append({"truth": truth, "results": [bad, good], "failures": {}})
    return out


def _values(task: dict[str, Any]) -> tuple[str, list[str]]:
    truth = str(task.get("truth") or "ANSWER")
    wrong = [str(w) for w in task.get("distractors") or [] if str(w) != truth] or ["WRONG"]
    return truth, wrong


def scenarios(task: dict[str, Any]) -> Any:
    """The Hypothesis strategy of scenarios the task's constraints allow."""
    from hypothesis import strategies as st

    spec = task.get("scenario", {})
    modes = set(spec.get("failure_modes", FAILURE_MODES))
    truth, wrong = _values(task)
    kinds = [k for k in FAILURE_KINDS if k in modes]
    n_max = max(1, min(int(spec.get("max_results", 3)), 5))
    result = st.fixed_dictionaries(
        {
            "source": st.sampled_from(["encyclopedia", "news", "forum", "blog", "archive"]),
            "reliable": st.booleans() if "unreliable" in modes else st.just(True),
            "stale": st.booleans() if "stale" in modes else st.just(False),
            "true": st.booleans()
            if modes & {"misleading", "unreliable", "stale"}
            else st.just(True),
            "claim": st.sampled_from(wrong),
        }
    ).map(_settle(truth, modes))
    tools = [t for t in task.get("tools", list(TOOLS)) if t in TOOLS]
    failures = (
        st.dictionaries(
            st.sampled_from(tools),
            st.dictionaries(st.integers(0, 3).map(str), st.sampled_from(kinds), max_size=2),
            max_size=3,
        )
        if kinds
        else st.just({})
    )
    return st.fixed_dictionaries(
        {
            "truth": st.just(truth),
            "results": st.lists(result, min_size=0 if "empty" in modes else 1, max_size=n_max),
            "failures": failures.map(lambda d: {k: v for k, v in d.items() if v}),
        }
    )


def _settle(truth: str, modes: set[str]) -> Any:
    def settle(r: dict[str, Any]) -> dict[str, Any]:
        # A reliable, current source lies only when the task allows misleading documents.
        honest = r["reliable"] and not r["stale"] and "misleading" not in modes
        claim = truth if r.pop("true") or honest else r["claim"]
        return {**r, "claim": claim}

    return settle


# ---- checking plans ----------------------------------------------------------------------


def check_plan(text: str, task: dict[str, Any], *, max_examples: int = 60) -> dict[str, Any]:
    """Run a plan in the fixed scenarios, then in Hypothesis's; the first violation, shrunk."""
    try:
        tree = parse_plan(text, list(task.get("tools", TOOLS)))
    except PlanError as exc:
        return {"passed": False, "parsed": False, "violations": [str(exc)], "scenarios": 0}
    fixed = fixed_scenarios(task)
    failing = [(run_plan(tree, task, sc), sc) for sc in fixed]
    failing = [f for f in failing if f[0][0]]
    if failing:
        # Of the hand-picked scenarios, report the one with the gravest violation.
        (violations, run, end), scenario = min(failing, key=lambda f: _severity(f[0][0]))
        return _failure(violations, scenario, run, end, len(fixed))
    from hypothesis import HealthCheck, given, settings

    found: dict[str, Any] = {}
    count = [0]

    @settings(
        max_examples=max_examples,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(scenarios(task))
    def holds(scenario: dict[str, Any]) -> None:
        count[0] += 1
        violations, run, end = run_plan(tree, task, scenario)
        if violations:
            found.update(violations=violations, scenario=scenario, run=run, end=end)
            raise AssertionError(violations[0])

    try:
        holds()
    except AssertionError:
        return _failure(
            found["violations"], found["scenario"], found["run"], found["end"], count[0]
        )
    return {"passed": True, "parsed": True, "violations": [], "scenarios": len(fixed) + count[0]}


def _severity(violations: list[str]) -> int:
    order = ("goal", "no_failed_tool_answers", "handles_failures", "verifies_claims")
    names = [v.split(":", 1)[0] for v in violations]
    return min((order.index(n) for n in names if n in order), default=len(order))


def _failure(
    violations: list[str], scenario: dict[str, Any], run: Run, end: Stop, n: int
) -> dict[str, Any]:
    return {
        "passed": False,
        "parsed": True,
        "violations": violations,
        "scenarios": n,
        "counterexample": scenario,
        "explanation": describe(scenario, run, end),
    }


def main() -> None:
    request = json.loads(sys.stdin.read())
    nonce = str(request["nonce"])
    for text in request["plans"]:
        result = check_plan(text, request["task"], max_examples=int(request["max_examples"]))
        sys.stdout.write(f"\n{nonce} {json.dumps(result)}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
