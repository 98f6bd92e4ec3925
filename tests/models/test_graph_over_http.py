"""A short SIPDO loop through langchain-openai against llama-cpp-python's server (slow).

Every role talks over real HTTP to a real ``llama_cpp.server`` holding the 0.5B
model; the run is recorded in a real SQLite ``RunStore``. The assertions are about
the plumbing, never about what the small model writes: the run finishes, each
role that was called has its calls, tokens and latency from the server's own
``usage`` in the store, and the learner's seed attempt is graded. A fault-injecting
proxy in front of the server shows a 500 and malformed bodies are retried with the
same request and lose nothing, and a server that keeps failing ends the run with
``ModelUnavailableError`` while what was recorded stays.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel

from sipdo.errors import ModelUnavailableError
from sipdo.graph import Budget, create_sipdo_graph
from sipdo.plugins.domains.code import CodeDomain
from sipdo.plugins.models import openai_model
from sipdo.plugins.models.openai_compat import SipdoChatOpenAI
from sipdo.sandbox import Sandbox
from sipdo.store import RunStore
from tests.graph.world import FAST
from tests.models import test_llama_server
from tests.models.flaky_server import flaky_server

pytestmark = pytest.mark.slow

# The module-scoped fixture that starts `python -m llama_cpp.server` on a free port.
server_url = test_llama_server.server_url
ALIAS = test_llama_server.ALIAS
PROMPT = "You write correct, short Python functions."
SEED = "chunk"
ROLES = ("learner", "generator", "checker", "optimizer")


def _model(base_url: str, **options: Any) -> BaseChatModel:
    """The model every role gets: small greedy replies, no constrained decoding."""
    model = openai_model(
        f"{ALIAS}@{base_url}",
        max_tokens=256,
        temperature=0,
        timeout=300,  # a busy 2-core machine must not turn slow replies into resends
        # Grammar-constrained decoding is slow on llama-cpp-python's server; the loop's
        # own JSON extraction and retries handle plain replies (and keep this test short).
        json_schema_mode="none",
        **options,
    )
    assert isinstance(model, SipdoChatOpenAI)
    return model


def _seed() -> dict[str, Any]:
    return next(t for t in CodeDomain().seed_tasks() if t["entry_point"] == SEED)


async def _run(base_url: str, sandbox: Sandbox, store: RunStore, **options: Any) -> Any:
    """One short loop: the seed pass, one iteration, at most 6 model calls."""
    model = _model(base_url, **options)
    graph = create_sipdo_graph(
        model,
        generator_model=model,
        checker_model=model,
        optimizer_model=model,
        domain=CodeDomain(verifier_config=FAST),
        strategy="sipdo",  # the server's rules answer the sipdo strategy's requests
        sandbox=sandbox,
        run_store=store,
        budget=Budget(iterations=1, model_calls=6, tasks_per_iteration=1, max_refinements=1),
    )
    run_id = f"http-{uuid.uuid4().hex[:8]}"
    out = await graph.ainvoke(
        {"prompt": PROMPT, "seed_tasks": [_seed()]}, {"configurable": {"run_id": run_id}}
    )
    return run_id, out


def _check_recorded(store: RunStore, run_id: str, out: dict[str, Any]) -> int:
    """Assert what every finished run must leave in the store; return its model calls."""
    run = store.get_run(run_id)
    assert out["stop_reason"]
    assert (run.status, run.stop_reason) == ("finished", out["stop_reason"])

    used = out["budget_used"]
    called = {role for role in ROLES if used["model_calls"].get(role, 0) > 0}
    assert {"learner", "generator"} <= called  # the seed pass, then the first iteration
    usage = {u.role: u for u in store.usage(run_id)}
    assert set(usage) == called
    for role in called:
        row = usage[role]
        assert row.model == ALIAS
        assert row.calls == used["model_calls"][role]
        # Tokens come from the server's usage block (the prompt alone is > 20 tokens).
        assert row.input_tokens == used["input_tokens"][role] > 20
        assert row.output_tokens == used["output_tokens"][role] > 0
        assert row.latency_s > 0

    seed = _seed()
    tasks = {t.task_id: t for t in store.tasks(run_id)}
    assert tasks[seed["id"]].status == "seed"
    first_version = store.prompt_lineage(run_id)[0].version_id
    seed_attempts = [a for a in store.attempts(run_id) if a.task_id == seed["id"]]
    assert seed_attempts, "the learner's answer to the seed task was not recorded"
    attempt = seed_attempts[0]
    assert (attempt.role, attempt.prompt_version_id) == ("learner", first_version)
    assert attempt.answer.strip()
    assert 0.0 <= attempt.score <= 1.0
    assert attempt.feedback.strip()  # the grader's textual reward
    return sum(used["model_calls"].values())


async def test_short_loop_over_http_records_usage_per_role(
    server_url: str, process_sandbox: Sandbox, tmp_path: Path
) -> None:
    with RunStore(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        run_id, out = await _run(server_url, process_sandbox, store)
        _check_recorded(store, run_id, out)


async def test_faults_once_are_retried_and_nothing_is_lost(
    server_url: str, process_sandbox: Sandbox, tmp_path: Path
) -> None:
    faults = ["500", "garbage", "no_choices"]
    with (
        flaky_server(faults, upstream=server_url) as proxy,
        RunStore(f"sqlite:///{tmp_path / 'runs.db'}") as store,
    ):
        run_id, out = await _run(proxy.url, process_sandbox, store)
        calls = _check_recorded(store, run_id, out)
    # The learner's first call met all three faults, each time resent whole, then got
    # through; every other call went through once. No call was lost or counted twice.
    assert proxy.modes[:4] == [*faults, "ok"]
    assert all(body == proxy.requests[0] for body in proxy.requests[1:4])
    assert len(proxy.requests) == calls + len(faults)


async def test_server_that_keeps_failing_stops_the_run_clearly(
    server_url: str, process_sandbox: Sandbox, tmp_path: Path
) -> None:
    with (
        flaky_server(["500"] * 3, upstream=server_url) as proxy,
        RunStore(f"sqlite:///{tmp_path / 'runs.db'}") as store,
    ):
        with pytest.raises(ModelUnavailableError, match="unavailable"):
            await _run(proxy.url, process_sandbox, store, max_retries=2)
        assert proxy.modes == ["500"] * 3  # first try + 2 retries, then the error
        (run,) = store.list_runs()
        assert run.status != "finished"
        # What was recorded before the failure is kept.
        assert [t.status for t in store.tasks(run.run_id)] == ["seed"]
        assert store.prompt_lineage(run.run_id)[0].text == PROMPT
        assert store.usage(run.run_id) == []
