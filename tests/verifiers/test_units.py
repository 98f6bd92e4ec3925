"""Pure parts of the verifiers: codec, comparison, signatures, mutants, consensus (no sandbox)."""

from __future__ import annotations

import math

import pytest

from sipdo.errors import ConfigurationError, VerificationError
from sipdo.verifiers import ConsensusVerifier, mutants, normalize_answer
from sipdo.verifiers.harness import codec
from sipdo.verifiers.shrink import simpler
from sipdo.verifiers.signature import signature, spec_of


class Rigged(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


def test_codec_round_trips_plain_values() -> None:
    value = [
        1,
        -(2**80),
        1.5,
        float("inf"),
        "é😀",
        b"\x00",
        None,
        True,
        (1, "a"),
        {"k": [1]},
        {3, 1},
        frozenset({2}),
    ]
    data = codec.encode(value)
    assert codec.decode(data) == value
    assert codec.key(codec.encode({1, 2, 3})) == codec.key(codec.encode({3, 2, 1}))


def test_codec_is_type_exact_and_bounded() -> None:
    assert codec.encode(Rigged(5)) == {"x": "Rigged"}
    assert not codec.same(codec.encode(Rigged(5)), codec.encode(5))
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(codec.Unencodable):
        codec.encode(loop)
    deep: list[object] = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(codec.Unencodable):
        codec.encode(deep)
    assert isinstance(codec.decode({"x": "Thing"}), codec.Opaque)


def test_same_tolerates_float_noise_and_matches_nan() -> None:
    enc = codec.encode
    assert codec.same(enc(0.1 + 0.2), enc(0.3))
    assert not codec.same(enc(1.0), enc(1.001))
    assert codec.same(enc(math.nan), enc(math.nan))
    assert not codec.same(enc(math.nan), enc(0.0))
    assert codec.same(enc(2), enc(2.0))
    assert not codec.same(enc(True), enc(1))
    assert not codec.same(enc([1, 2]), enc((1, 2)))
    assert codec.same(enc({"a": 1.0, "b": 2}), enc({"b": 2, "a": 1.0 + 1e-12}))
    ok = {"r": {"raise": "ValueError"}, "post": []}
    assert codec.same_result(ok, {"r": {"raise": "ValueError"}, "post": []})
    assert not codec.same_result(ok, {"r": {"raise": "KeyError"}, "post": []})
    assert not codec.same_result(
        {"r": {"timeout": True}, "post": []}, {"r": {"timeout": True}, "post": []}
    )


def test_signature_specs_from_annotations() -> None:
    src = "from typing import Optional\ndef f(a: list[int], b: Optional[str], c: dict[str, float], d, e: 'tuple[int, ...]') -> int:\n    return 0\n"  # noqa: E501
    sig = signature(src, "f")
    assert sig.params == ("a", "b", "c", "d", "e")
    assert sig.specs[0] == {"k": "list", "of": {"k": "int"}}
    assert sig.specs[1] == {"k": "union", "of": [{"k": "str"}, {"k": "none"}]}
    assert sig.specs[2] == {"k": "dict", "key": {"k": "str"}, "val": {"k": "float"}}
    assert sig.specs[3] == {"k": "any"}
    assert sig.specs[4] == {"k": "list", "of": {"k": "int"}, "tuple": True}
    assert spec_of(None) == {"k": "any"}
    with pytest.raises(VerificationError, match="no top-level function"):
        signature(src, "g")
    with pytest.raises(VerificationError, match="does not parse"):
        signature("def f(:", "f")


def test_mutants_cover_the_operators_and_leave_docstrings() -> None:
    src = (
        "def f(xs: list[int], k: int) -> int:\n"
        "    '''Doc string stays.'''\n"
        "    total = 0\n"
        "    for x in xs:\n"
        "        if x > k and not x == 3:\n"
        "            total += x * 2\n"
        "        elif x < 0:\n"
        "            break\n"
        "    return total\n"
    )
    found = mutants(src, limit=100)
    descriptions = " | ".join(m.description for m in found)
    for change in ("`x > k` -> `x >= k`", "`x * 2` -> `x + 2`", "-> `x > k or not x == 3`",
                   "`0` -> `1`", "`return total` -> `return None`", "`break` -> `continue`",
                   "(removed)", "`not x == 3` -> `x == 3`", "if not x < 0"):  # fmt: skip
        assert change in descriptions, change
    assert all("Doc string stays." in m.source for m in found)
    assert len({m.source for m in found}) == len(found)
    for m in found:
        compile(m.source, "<m>", "exec")
    assert len(mutants(src, limit=5)) == 5
    with pytest.raises(SyntaxError):
        mutants("def f(:", limit=5)


def test_normalize_answer() -> None:
    assert normalize_answer("  The answer is: $1,000.50$. ") == "1000.5"
    assert normalize_answer("\\boxed{42}") == "42"
    assert normalize_answer("Yes") == normalize_answer("true") == "true"
    assert normalize_answer("Paris.") == normalize_answer(" paris ") == "paris"
    assert normalize_answer("-0.0") == "0"


def test_consensus_verifier_votes() -> None:
    verifier = ConsensusVerifier()
    vote = verifier.vote(["42", "42.0", "41"])
    assert vote.winner == "42"
    assert vote.count == 2
    assert vote.agreed
    assert verifier.verify(["42", " 42 ", "7"], "The answer is 42.").passed
    wrong = verifier.verify(["42", "42", "7"], "7")
    assert not wrong.passed
    assert "42" not in wrong.feedback
    tie = verifier.verify(["a", "b"], "a")
    assert not tie.passed
    assert "no consensus" in tie.feedback
    strict = ConsensusVerifier(k=3)
    assert not strict.verify(["x", "x", "y"], "x").passed
    assert strict.verify(["x", "x", "x"], "x").passed
    with pytest.raises(ConfigurationError):
        ConsensusVerifier(k=0)


async def test_consensus_async_twin() -> None:
    assert (await ConsensusVerifier().averify("Paris", "paris")).passed


def test_simpler_inputs_are_strictly_smaller() -> None:
    inp = {"args": [codec.encode([3, 7, 6]), codec.encode("abc"), 5], "kwargs": {}}
    found = simpler(inp)
    keys = {codec.key(c) for c in found}
    assert codec.key({"args": [[], "abc", 5], "kwargs": {}}) in keys
    assert codec.key({"args": [[3, 7, 6], "", 5], "kwargs": {}}) in keys
    assert codec.key({"args": [[3, 7, 6], "abc", 0], "kwargs": {}}) in keys
    assert all(codec.size(c) < codec.size(inp) for c in found)
    assert len(keys) == len(found)
    assert simpler({"args": [[], "", 0], "kwargs": {}}) == []


PROBE = """
import json, sys
sys.path.insert(0, ".")
import _sipdo_gen, _sipdo_probe, solution
from hypothesis.internal.conjecture import providers
hidden = _sipdo_gen.hide_harness() if sys.argv[1] == "hide" else 0
strings = {str(c) for c in providers._get_local_constants()}
print(json.dumps({"hidden": hidden, "harness": "harness-mark" in strings,
                  "solution": "solution-mark" in strings}))
"""


@pytest.mark.parametrize("hide", [True, False])
def test_generation_takes_no_constants_from_the_harness(tmp_path, hide: bool) -> None:
    """Hypothesis draws constants of "local" modules: the task's solution's, not the
    harness modules shipped next to it (the control run shows they are found otherwise)."""
    import json
    import subprocess
    import sys

    from sipdo.verifiers import harness

    (tmp_path / "_sipdo_gen.py").write_text(harness.script("gen"))
    (tmp_path / "_sipdo_probe.py").write_text('MARK = "harness-mark"\n')
    (tmp_path / "solution.py").write_text('def f():\n    return "solution-mark"\n')
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "hide" if hide else "keep"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(out.stdout)
    assert found["solution"] is True
    assert found["harness"] is (not hide)
    assert found["hidden"] == (2 if hide else 0)  # _sipdo_gen and _sipdo_probe
