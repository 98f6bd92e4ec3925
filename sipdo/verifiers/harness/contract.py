"""Input contracts: which inputs a task is defined on (stdlib only; runs in the sandbox).

A contract is the task's precondition. It is either written (Python source
defining ``precondition(<the entry point's parameters>)`` or one boolean
expression over the parameter names: the generator writes one, a user may
supply one) or *inferred* from the arguments the task's own tests pass, as
plain JSON (``infer``), read conservatively: only what every test call shows.

Inferred, per parameter: the kinds of values seen (an int is accepted where
floats are seen; bool is not an int), numbers' sign floor (``> 0`` or
``>= 0`` when no test goes lower, ``>= 2`` when none goes below 2), sizes
(non-empty when no test passes an empty value), the characters of strings by
class (lower, upper, digit, and each other character seen; exactly the seen
characters when the tests use at most four, e.g. ``"01"``), a format when
every test string has the same shape once digit runs are abstracted (``"5
apples and 6 oranges"``), sorted order of lists when every list the tests
pass is sorted, and the same rules for the elements of containers. Between
parameters: equal lengths when every test call passes equal lengths.

``variants`` derives new inputs from the tests' own ones (EvalPlus-style
type-aware mutation: numbers moved, digit runs of formatted strings
rewritten, elements of containers dropped, duplicated, swapped and mutated);
the driver keeps those the contract admits.
"""

from __future__ import annotations

import contextlib
import random
import re
from typing import Any

Contract = dict[str, Any]
_MAX_FORMAT_LITERAL = 200
_EXACT_ALPHABET = 4


def _kind(v: object) -> str:
    t = type(v)
    names = {int: "int", float: "float", bool: "bool", str: "str", bytes: "bytes"}
    names |= {list: "list", tuple: "tuple", dict: "dict", set: "set", frozenset: "frozenset"}
    if v is None:
        return "none"
    return names.get(t, "any")


def _char_class(c: str) -> str:
    if "a" <= c <= "z":
        return "lower"
    if "A" <= c <= "Z":
        return "upper"
    if "0" <= c <= "9":
        return "digit"
    return c


def _shape(s: str) -> str:
    return re.sub(r"\d+", "\x00", s)


def infer_value(values: list[Any], depth: int = 0) -> Contract:
    """The contract every one of ``values`` satisfies (conservatively narrow)."""
    out: Contract = {"kinds": sorted({_kind(v) for v in values})}
    if "any" in out["kinds"] or depth > 3:
        return {"kinds": ["any"]}
    nums = [v for v in values if type(v) in (int, float)]
    if nums and len(nums) == len(values):
        low = min(nums)
        if low >= 2:
            out["min"] = 2
        elif low > 0:
            out["gt"] = 0
        elif low >= 0:
            out["min"] = 0
    strs = [v for v in values if type(v) is str]
    if strs and len(strs) == len(values):
        chars = {c for s in strs for c in s}
        if chars and len(chars) <= _EXACT_ALPHABET and sum(map(len, strs)) >= 4:
            out["chars"] = sorted(chars)
        elif chars:
            out["classes"] = sorted({_char_class(c) for c in chars})
        shapes = {_shape(s) for s in strs}
        if len(strs) >= 2 and len(shapes) == 1:
            (shape,) = shapes
            has_digits = any(re.search(r"\d", s) for s in strs)
            if has_digits and shape.strip("\x00") and len(shape) <= _MAX_FORMAT_LITERAL:
                out["format"] = shape
    sized = [v for v in values if type(v) in (str, bytes, list, tuple, dict, set, frozenset)]
    if sized and len(sized) == len(values) and all(len(v) for v in sized):
        out["nonempty"] = True
    seqs = [v for v in values if type(v) in (list, tuple, set, frozenset)]
    if seqs and len(seqs) == len(values):
        elems = [e for v in seqs for e in v]
        if elems:
            out["of"] = infer_value(elems, depth + 1)
        lists = [v for v in seqs if type(v) in (list, tuple)]
        long = [v for v in lists if len(v) >= 3 and len(set(map(repr, v))) >= 3]
        if len(lists) == len(seqs) and len(long) >= 2 and all(_sorted(v) for v in lists):
            out["sorted"] = True
    dicts = [v for v in values if type(v) is dict]
    if dicts and len(dicts) == len(values):
        keys = [k for d in dicts for k in d]
        vals = [x for d in dicts for x in d.values()]
        if keys:
            out["key"] = infer_value(keys, depth + 1)
            out["val"] = infer_value(vals, depth + 1)
    return out


def _sorted(v: Any) -> bool:
    try:
        return all(v[i] <= v[i + 1] for i in range(len(v) - 1))
    except TypeError:
        return False


def infer(calls: list[list[Any]], n_params: int) -> Contract:
    """The contract of the test calls' positional arguments (``calls``: argument lists)."""
    full = [c for c in calls if len(c) == n_params]
    if not full:
        return {"params": [], "equal_len": []}
    params = [infer_value([c[i] for c in full]) for i in range(n_params)]
    equal: list[list[int]] = []
    if len(full) >= 2:
        for i in range(n_params):
            for j in range(i + 1, n_params):
                if all(_sized(c[i]) and _sized(c[j]) and len(c[i]) == len(c[j]) for c in full):
                    equal.append([i, j])
    return {"params": params, "equal_len": equal}


def _sized(v: Any) -> bool:
    return type(v) in (str, bytes, list, tuple, dict, set, frozenset)


def _chars_ok(spec: Contract, s: str) -> bool:
    if "chars" in spec:
        allowed = set(spec["chars"])
        return all(c in allowed for c in s)
    if "classes" in spec:
        classes = set(spec["classes"])
        return all(_char_class(c) in classes for c in s)
    return True


def value_holds(spec: Contract, v: Any) -> bool:
    """``v`` satisfies the per-value contract ``spec``."""
    kinds = spec.get("kinds", ["any"])
    kind = _kind(v)
    if "any" not in kinds and kind not in kinds and not (kind == "int" and "float" in kinds):
        return False
    if type(v) in (int, float):
        if "min" in spec and not v >= spec["min"]:
            return False
        if "gt" in spec and not v > spec["gt"]:
            return False
    if spec.get("nonempty") and _sized(v) and not len(v):
        return False
    if type(v) is str:
        if not _chars_ok(spec, v):
            return False
        if "format" in spec and _shape(v) != spec["format"]:
            return False
    if type(v) in (list, tuple, set, frozenset):
        if "of" in spec and not all(value_holds(spec["of"], e) for e in v):
            return False
        if spec.get("sorted") and type(v) in (list, tuple) and not _sorted(v):
            return False
    if type(v) is dict and "key" in spec:
        return all(value_holds(spec["key"], k) for k in v) and all(
            value_holds(spec["val"], x) for x in v.values()
        )
    return True


def holds(contract: Contract, args: list[Any]) -> bool:
    """The positional arguments ``args`` satisfy the inferred ``contract``."""
    params = contract.get("params") or []
    if params and len(args) != len(params):
        return False
    if not all(value_holds(p, a) for p, a in zip(params, args, strict=False)):
        return False
    return all(len(args[i]) == len(args[j]) for i, j in contract.get("equal_len", []))


def repair(contract: Contract, args: list[Any]) -> list[Any]:
    """``args`` nudged towards the contract's relations: equal-length groups cut to the
    shortest, lists that must be sorted sorted (other rules are only checked)."""
    out = list(args)
    params = contract.get("params") or []
    for i, spec in enumerate(params[: len(out)]):
        if spec.get("sorted") and type(out[i]) in (list, tuple):
            with contextlib.suppress(TypeError):
                out[i] = type(out[i])(sorted(out[i]))
    for i, j in contract.get("equal_len", []):
        if i < len(out) and j < len(out) and _sized(out[i]) and _sized(out[j]):
            n = min(len(out[i]), len(out[j]))
            for k in (i, j):
                if type(out[k]) in (str, bytes, list, tuple) and len(out[k]) > n:
                    out[k] = out[k][:n]
    return out


def written(source: str, params: list[str]) -> Any:
    """The callable a written contract defines: a ``precondition`` function or an expression."""
    namespace: dict[str, Any] = {}
    try:
        compile(source, "<precondition>", "eval")
    except SyntaxError:
        exec(compile(source, "<precondition>", "exec"), namespace)
        return namespace["precondition"]
    wrapper = f"def precondition({', '.join(params)}):\n    return ({source.strip()})\n"
    exec(compile(wrapper, "<precondition>", "exec"), namespace)
    return namespace["precondition"]


def _vary(v: Any, rng: random.Random, pool: list[Any], depth: int = 0) -> Any:
    """One type-aware random mutation of ``v`` (``pool``: values of the same parameter seen)."""
    t = type(v)
    if t is bool:
        return not v
    if t is int:
        return rng.choice([v + 1, v - 1, v * 2, v // 2, v + rng.randint(-10, 10), 0, 1, 2])
    if t is float:
        return rng.choice([v + 1.0, v - 1.0, v * 2, v / 2, -v, 0.0, round(v), v + 0.5])
    if t is str:
        if re.search(r"\d", v) and rng.random() < 0.7:
            return re.sub(r"\d+", lambda m: str(max(0, int(m.group()) + rng.randint(-5, 20))), v)
        if not v:
            return rng.choice([s for s in pool if type(s) is str] or ["a"])
        i = rng.randrange(len(v))
        return rng.choice(
            [v[:i] + v[i + 1 :], v[:i] + v[i] + v[i:], v[::-1], v + v[i], v[i] + v, v[:i]]
        )
    if t in (list, tuple):
        items = list(v)
        if not items:
            items = [e for s in pool if type(s) in (list, tuple) for e in s][:1]
            return t(items)
        i, j = rng.randrange(len(items)), rng.randrange(len(items))
        op = rng.randrange(5 if depth < 3 else 4)
        if op == 0:
            del items[i]
        elif op == 1:
            items.insert(i, items[j])
        elif op == 2:
            items[i], items[j] = items[j], items[i]
        elif op == 3:
            items.append(items[i])
        else:
            items[i] = _vary(items[i], rng, [], depth + 1)
        return t(items)
    if t in (set, frozenset) and v:
        items = sorted(v, key=repr)
        return t(items[1:]) if rng.random() < 0.5 else t([*items, _vary(items[0], rng, [])])
    if t is dict and v:
        keys = list(v)
        k = rng.choice(keys)
        out = dict(v)
        if rng.random() < 0.5:
            del out[k]
        else:
            out[k] = _vary(out[k], rng, [], depth + 1)
        return out
    return v


def variants(calls: list[list[Any]], n: int, salt: int = 0) -> list[list[Any]]:
    """Up to ``n`` argument lists, each a test call with one or two arguments mutated."""
    full = [c for c in calls if c]
    if not full or n <= 0:
        return []
    rng = random.Random(salt)
    pools = [[c[i] for c in full if len(c) > i] for i in range(max(map(len, full)))]
    out: list[list[Any]] = []
    for _ in range(n * 3):
        if len(out) >= n:
            break
        base = list(rng.choice(full))
        for _ in range(rng.choice([1, 1, 2])):
            i = rng.randrange(len(base))
            try:
                base[i] = _vary(base[i], rng, pools[i])
            except (TypeError, ValueError, OverflowError):
                continue
        out.append(base)
    return out
