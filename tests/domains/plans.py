"""Plans used across the plan-domain tests."""

from __future__ import annotations

from sipdo.plugins.domains.plan import NAIVE_PLAN

REFERENCE = """s = search(question)
if failed(s) or empty(s):
    abstain("no usable search results")
for r in s.results:
    d = fetch(r)
    if failed(d):
        continue
    q = check_source(d)
    if failed(q) or q != "reliable":
        continue
    v = verify_claim(d.claim)
    if failed(v) or v != "supported":
        continue
    answer(d.claim)
abstain("no verified claim from a reliable source")
"""

# The seeds' example 4: search -> summarize -> answer.
SEED_EXAMPLE = """s = search(question)
d = fetch(s.first)
m = summarize(d)
answer(m.claim)
"""

# Checks every result before use, but answers even when the verifier refutes the claim.
IGNORES_VERIFIER = """s = search(question)
if failed(s) or empty(s):
    abstain("nothing")
d = fetch(s.first)
if failed(d):
    abstain("fetch failed")
q = check_source(d)
v = verify_claim(d.claim)
answer(d.claim)
"""

# Lies about its result: "verifies" a literal and answers it (world knowledge, no tool).
LIAR = """s = search(question)
v = verify_claim("1889")
answer("1889")
"""

__all__ = ["IGNORES_VERIFIER", "LIAR", "NAIVE_PLAN", "REFERENCE", "SEED_EXAMPLE"]
