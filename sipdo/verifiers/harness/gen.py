"""Input generation from type specs and observed values (runs in the sandbox).

A *spec* is JSON describing one parameter: ``{"k": kind, ...}`` with kinds
``int float bool none str bytes list tuple dict set frozenset union any``.
Specs come from the annotations (parsed on the host) and are refined by the
argument values the task's own tests pass (``infer`` / ``merge``): when the
tests only use non-negative ints, short lower-case strings or non-empty
lists, generated inputs stay in that domain, so a correct alternative
solution is not failed on inputs outside the task's implied precondition.
Without observations the strategies are broad and the edge cases include
empty, zero, negative, unicode, large and duplicate values.

Hypothesis also draws, now and then, constants it finds in the run's "local"
modules (those outside the standard library and site-packages): the task's
solution, rightly, but also this harness's own modules, shipped into the run
next to it. Those are not the task's (``"timeout"``, ``2**53``) and parsing
them took about 16 ms of every generating run, so ``draw`` hides them first
(``hide_harness``).
"""

from __future__ import annotations

import sys
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

Spec = dict[str, Any]
_SIZE_KINDS = ("list", "set", "frozenset", "dict")


def _kind(v: object) -> str:
    t = type(v)
    names = {int: "int", float: "float", bool: "bool", str: "str", bytes: "bytes"}
    names |= {list: "list", tuple: "tuple", dict: "dict", set: "set", frozenset: "frozenset"}
    if v is None:
        return "none"
    return names.get(t, "any")


def infer(values: list[Any]) -> Spec | None:
    """The narrowest spec covering the observed ``values`` (None if no values)."""
    if not values:
        return None
    groups: dict[str, list[Any]] = {}
    for v in values:
        groups.setdefault(_kind(v), []).append(v)
    specs = [_infer_kind(k, vs) for k, vs in groups.items()]
    return specs[0] if len(specs) == 1 else {"k": "union", "of": specs}


def _infer_kind(kind: str, vs: list[Any]) -> Spec:
    if kind in ("int", "float"):
        lo, hi = min(vs), max(vs)
        span = max(abs(lo), abs(hi), 5)
        return {"k": kind, "min": 0 if lo >= 0 else -2 * span, "max": 2 * span if hi >= 0 else 0}
    if kind in ("str", "bytes"):
        chars = sorted({c for v in vs for c in v})
        lens = [len(v) for v in vs]
        alphabet = "".join(chars) if kind == "str" and 0 < len(chars) <= 40 else None
        return {
            "k": kind,
            "alphabet": alphabet,
            "min": min(min(lens), 1),
            "max": max(8, 2 * max(lens)),
        }
    if kind in ("list", "set", "frozenset"):
        lens = [len(v) for v in vs]
        spec = {"k": kind, "min": min(min(lens), 1), "max": min(40, max(8, 2 * max(lens)))}
        return spec | {"of": infer([e for v in vs for e in v]) or {"k": "int"}}
    if kind == "tuple":
        if len({len(v) for v in vs}) == 1:
            return {"k": "tuple", "items": [infer([v[i] for v in vs]) for i in range(len(vs[0]))]}
        return {"k": "list", "of": infer([e for v in vs for e in v]) or {"k": "int"}, "tuple": True}
    if kind == "dict":
        lens = [len(v) for v in vs]
        spec = {"k": "dict", "min": min(min(lens), 1), "max": min(20, max(6, 2 * max(lens)))}
        keys, vals = [k for v in vs for k in v], [x for v in vs for x in v.values()]
        return spec | {"key": infer(keys) or {"k": "str"}, "val": infer(vals) or {"k": "int"}}
    return {"k": kind}


def merge(annotated: Spec | None, observed: Spec | None) -> Spec:
    """Refine the annotated spec with constraints seen in the tests' arguments."""
    if annotated is None or annotated["k"] == "any":
        return observed or {"k": "any"}
    if observed is None:
        return annotated
    if annotated["k"] == observed["k"]:
        out = dict(observed)
        for sub in ("of", "key", "val"):
            if sub in annotated and not isinstance(annotated[sub], list):
                out[sub] = merge(annotated[sub], observed.get(sub))
        return out
    if annotated["k"] == "float" and observed["k"] == "int":
        return {"k": "float", "min": observed["min"], "max": observed["max"]}
    if annotated["k"] == "union":
        return {
            "k": "union",
            "of": [
                merge(a, observed if a["k"] == observed["k"] else None) for a in annotated["of"]
            ],
        }
    return annotated


def strategy(spec: Spec, wide: bool = False) -> st.SearchStrategy[Any]:
    """A Hypothesis strategy for one spec; ``wide`` doubles sizes and ranges."""
    k, grow = spec["k"], 2 if wide else 1
    if k == "int":
        return st.integers(spec.get("min", -1000 * grow), spec.get("max", 1000 * grow) * grow)
    if k == "float":
        lo, hi = spec.get("min", -1e6), spec.get("max", 1e6) * grow
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    if k == "bool":
        return st.booleans()
    if k == "none":
        return st.none()
    if k in ("str", "bytes"):
        lo, hi = spec.get("min", 0), spec.get("max", 12) * grow
        if k == "bytes":
            return st.binary(min_size=lo, max_size=hi)
        alphabet = spec.get("alphabet")
        return (
            st.text(alphabet=alphabet, min_size=lo, max_size=hi)
            if alphabet
            else st.text(min_size=lo, max_size=hi)
        )
    if k in _SIZE_KINDS:
        lo, hi = spec.get("min", 0), spec.get("max", 10) * grow
        if k == "dict":
            return st.dictionaries(
                strategy(spec["key"], wide), strategy(spec["val"], wide), min_size=lo, max_size=hi
            )
        elems = strategy(spec.get("of", {"k": "int"}), wide)
        made: st.SearchStrategy[Any]
        if k == "set":
            made = st.sets(elems, min_size=lo, max_size=hi)
        elif k == "frozenset":
            made = st.frozensets(elems, min_size=lo, max_size=hi)
        else:
            made = st.lists(elems, min_size=lo, max_size=hi)
        return made.map(tuple) if spec.get("tuple") else made
    if k == "tuple":
        return st.tuples(*(strategy(s or {"k": "any"}, wide) for s in spec["items"]))
    if k == "union":
        return st.one_of(*(strategy(s, wide) for s in spec["of"]))
    return st.one_of(
        st.integers(-100, 100), st.text(max_size=10), st.lists(st.integers(-100, 100), max_size=8)
    )


def _fits(spec: Spec, v: Any) -> bool:
    k = spec["k"]
    if k in ("int", "float") and ("min" in spec or "max" in spec):
        return bool(spec.get("min", v) <= v <= spec.get("max", v))
    if k in ("str", "bytes", *_SIZE_KINDS) and ("min" in spec or "max" in spec):
        ok = spec.get("min", 0) <= len(v) <= spec.get("max", len(v))
        alphabet = spec.get("alphabet")
        return bool(ok and (not alphabet or all(c in alphabet for c in v)))
    return True


def edges(spec: Spec) -> list[Any]:
    """Edge-case values for a spec, restricted to the spec's constraints."""
    k = spec["k"]
    found: list[Any]
    if k == "int":
        found = [
            0,
            1,
            -1,
            2,
            -2,
            10,
            -10,
            10**9,
            -(10**9),
            2**63,
            spec.get("min", 0),
            spec.get("max", 0),
        ]
    elif k == "float":
        found = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-9, 1e12, float("nan"), float("inf"), float("-inf")]
        if "min" in spec:
            found = [float(spec["min"]), float(spec["max"]), 0.5 + spec["min"], *found[:7]]
    elif k == "bool":
        found = [False, True]
    elif k == "none":
        found = [None]
    elif k == "str":
        a = spec.get("alphabet") or ""
        found = ["", "a", " ", "aa", "Ab", "é漢😀", "a\nb", "x" * 200]
        if a:
            found = ["", a[0], a[0] * 2, a[0] + a[-1], a[-1] + a[0], a, a[::-1], a * 3]
    elif k == "bytes":
        found = [b"", b"\x00", b"ab", b"\xff" * 3]
    elif k in ("list", "set", "frozenset"):
        inner = edges(spec.get("of", {"k": "int"}))[:4] or [0]
        e0 = inner[0]
        seqs = [[], [e0], [e0, e0], inner, inner[::-1], inner * 2, [e0] * 200]
        conv: Any = {
            "list": tuple if spec.get("tuple") else list,
            "set": set,
            "frozenset": frozenset,
        }[k]
        found = [conv(s) for s in seqs if k == "list" or len(set(map(repr, s))) == len(s)]
    elif k == "dict":
        ks, vs = edges(spec["key"])[:3], edges(spec["val"])[:3]
        found = [{}, {ks[0]: vs[0]}, dict(zip(ks, vs, strict=False))] if ks and vs else [{}]
    elif k == "tuple":
        parts = [edges(s or {"k": "any"}) or [None] for s in spec["items"]]
        found = [tuple(p[0] for p in parts), tuple(p[-1] for p in parts)]
    elif k == "union":
        found = [v for s in spec["of"] for v in edges(s)[:4]]
    else:
        found = [0, "", [], -1, "a", [1, 1]]
    return [v for v in found if _fits(spec, v)]


HARNESS_PREFIX = "_sipdo_"  # the harness modules' names in a run (``harness.SCRIPT_NAMES``)


def hide_harness() -> int:
    """Keep Hypothesis from taking constants out of the harness's own modules.

    Marks them (and ``__main__`` when it is a harness script) as already
    scanned in Hypothesis's record of the modules it has looked at; returns how
    many. Hypothesis internals: nothing is hidden (0) if they are not there.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except Exception:
        return 0
    seen = getattr(providers, "_seen_modules", None)
    if not isinstance(seen, set):
        return 0
    hidden = 0
    for name, module in list(sys.modules.items()):
        path = str(getattr(module, "__file__", None) or "")
        script = path.rsplit("/", 1)[-1]
        if name.startswith(HARNESS_PREFIX) or (
            name == "__main__" and script.startswith(HARNESS_PREFIX)
        ):
            seen.add(id(module))
            hidden += 1
    return hidden


def draw(strat: st.SearchStrategy[Any], n: int, salt: int) -> list[Any]:
    """``n`` examples from ``strat``, deterministic for a given ``salt`` (the harness's
    own modules hidden from Hypothesis's constants first, see ``hide_harness``)."""
    out: list[Any] = []
    if n <= 0:
        return out
    hide_harness()

    @seed(salt)
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strat)
    def collect(x: Any) -> None:
        out.append(x)

    collect()
    return out


def edge_inputs(specs: list[Spec], limit: int = 8) -> list[list[Any]]:
    """One-parameter-at-a-time edge cases, the other parameters at a simple value."""
    per_param = [edges(s) or draw(strategy(s), 1, 1) for s in specs]
    base = [vals[0] for vals in per_param]
    out = [list(base)]
    for i, vals in enumerate(per_param):
        for v in vals[:limit]:
            out.append([*base[:i], v, *base[i + 1 :]])
    return out
