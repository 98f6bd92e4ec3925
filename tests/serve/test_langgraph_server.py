"""sipdo served by a real ``langgraph dev`` (in-memory runtime) in a subprocess, driven
over HTTP with ``langgraph_sdk``.

The roles are ``ScriptedChatModel``s behind an OpenAI-compatible loopback server
(``scripted_server``), reached through the real openai client; each run names
its own. Code is graded by the real verifiers in the server's one process sandbox.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import UnprocessableEntityError

from tests.serve.harness import (
    INITIAL,
    ONE_STEP,
    SEED,
    Server,
    add_roles,
    optimizer,
    server_env,
    stream,
)
from tests.serve.scripted_server import ScriptedOpenAI, scripted_openai

pytest.importorskip("langgraph_api", reason="needs the serve extra (langgraph-cli[inmem])")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def models() -> Iterator[ScriptedOpenAI]:
    with scripted_openai() as server:
        add_roles(server)
        yield server


@pytest.fixture(scope="module")
def server(models: ScriptedOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("langgraph"), server_env(models))
    srv.start()
    yield srv
    srv.stop()


async def test_schemas_show_input_output_and_settings(server: Server) -> None:
    client = server.client()
    [assistant] = await client.assistants.search(
        graph_id="sipdo", metadata={"created_by": "system"}
    )
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    assert {"prompt", "seed_tasks"} <= set(schemas["input_schema"]["properties"])
    assert {"best_prompt", "accepted_tasks", "history"} <= set(
        schemas["output_schema"]["properties"]
    )
    context = schemas["context_schema"]
    assert {"model", "budget", "approve_prompts", "gate"} <= set(context["properties"])


async def test_streamed_run_with_per_assistant_models(
    server: Server, models: ScriptedOpenAI
) -> None:
    client = server.client()
    assistant = await client.assistants.create(
        "sipdo",
        context={
            "generator_model": f"openai:gen-clamp@{models.url}",
            "optimizer_model": optimizer(models, "opt-main", "Be exact. FIX"),
            "budget": ONE_STEP,
        },
    )
    thread = await client.threads.create()
    events, values, errors = await stream(
        client,
        thread["thread_id"],
        assistant["assistant_id"],
        input={"prompt": INITIAL, "seed_tasks": SEED},
    )
    assert errors == []
    assert values["best_prompt"] == "Be exact. FIX"
    assert values["stop_reason"] == "iterations"
    assert [t["entry_point"] for t in values["accepted_tasks"]] == ["clamp"]
    kinds = {e["event"] for e in events}
    assert {"budget", "task_verdict", "learner_result", "prompt_candidate", "run_end"} <= kinds
    assert models.calls("opt-main") == 3
    run = (await client.runs.list(thread["thread_id"]))[0]
    assert run["status"] == "success"


async def test_two_concurrent_runs_configured_per_run(
    server: Server, models: ScriptedOpenAI
) -> None:
    client = server.client()
    threads = [(await client.threads.create())["thread_id"] for _ in range(2)]
    runs = []
    for n, thread_id in enumerate(threads):
        context = {
            "generator_model": f"openai:gen-none@{models.url}",
            "optimizer_model": optimizer(models, f"opt-{n}", f"Variant {n}. FIX"),
            "budget": ONE_STEP,
        }
        runs.append(
            await client.runs.create(
                thread_id, "sipdo", input={"prompt": INITIAL, "seed_tasks": SEED}, context=context
            )
        )
    finals = [await client.runs.join(t, r["run_id"]) for t, r in zip(threads, runs, strict=True)]
    assert [f["best_prompt"] for f in finals] == ["Variant 0. FIX", "Variant 1. FIX"]
    # A run's own budget is honoured: one model call, then the run stops (one seed: the
    # seed pass answers its tasks concurrently, so five seeds would be five calls).
    thread_id = (await client.threads.create())["thread_id"]
    _, values, _ = await stream(
        client,
        thread_id,
        "sipdo",
        input={"prompt": INITIAL, "seed_tasks": SEED[:1]},
        context={"budget": {"model_calls": 1}},
    )
    assert values["stop_reason"] == "budget:model_calls"
    assert sum(values["budget_used"]["model_calls"].values()) == 1
    status = await asyncio.to_thread(server.status)
    assert status["sandboxes_opened"] == 1  # every run so far shared the one sandbox


async def test_bad_settings_and_bad_input_reach_the_client(server: Server) -> None:
    client = server.client()
    thread_id = (await client.threads.create())["thread_id"]
    with pytest.raises(UnprocessableEntityError) as bad:
        await client.runs.create(
            thread_id, "sipdo", input={"prompt": INITIAL}, context={"budget": {"iterations": 0}}
        )
    assert "budget.iterations: Input should be greater than or equal to 1" in str(bad.value.body)
    with pytest.raises(UnprocessableEntityError, match="not allowed on this server"):
        await client.assistants.create(
            "sipdo", context={"model": "openai:gpt-4o@https://elsewhere.example/v1"}
        )
    _, _, errors = await stream(client, thread_id, "sipdo", input={"prompt": "  "})
    assert errors == [
        {
            "error": "ConfigurationError",
            "message": "input state needs a non-empty 'prompt' string",
        }
    ]
    run = (await client.runs.list(thread_id))[0]
    assert run["status"] == "error"


async def _until_approval(
    client: LangGraphClient, assistant_id: str, optimizer_spec: str
) -> tuple[str, dict[str, Any]]:
    """Start a run that pauses for approval; (thread id, interrupt payload)."""
    thread_id = (await client.threads.create())["thread_id"]
    _, _, errors = await stream(
        client,
        thread_id,
        assistant_id,
        input={"prompt": INITIAL, "seed_tasks": SEED},
        context={"optimizer_model": optimizer_spec},
    )
    assert errors == []
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["approve"]
    [interrupt] = state["tasks"][0]["interrupts"]
    return thread_id, interrupt["value"]


@pytest.fixture(scope="module")
def approving(server: Server, models: ScriptedOpenAI) -> str:
    """An assistant that asks before promoting a prompt."""
    assistant = get_sync_client(url=server.url).assistants.create(
        "sipdo",
        context={
            "approve_prompts": True,
            "generator_model": f"openai:gen-none@{models.url}",
            "budget": ONE_STEP,
        },
    )
    return str(assistant["assistant_id"])


@pytest.mark.parametrize(("answer", "accepted"), [({"approved": False}, False), (True, True)])
async def test_approval_over_the_api(
    server: Server, models: ScriptedOpenAI, approving: str, answer: Any, accepted: bool
) -> None:
    client = server.client()
    spec = optimizer(models, f"opt-approve-{accepted}", f"Reviewed {accepted}. FIX")
    thread_id, payload = await _until_approval(client, approving, spec)
    assert payload["kind"] == "approve_prompt"
    assert payload["current"] == INITIAL
    assert payload["candidate"] == f"Reviewed {accepted}. FIX"
    assert sorted(payload["fixed"]) == sorted(t["id"] for t in SEED)
    _, values, errors = await stream(client, thread_id, approving, command={"resume": answer})
    assert errors == []
    assert values["best_prompt"] == (f"Reviewed {accepted}. FIX" if accepted else INITIAL)
    [attempt] = [h for h in values["history"] if h["kind"] == "prompt_attempt"]
    assert attempt["accepted"] is accepted
    if not accepted:
        assert attempt["reason"] == "rejected by the reviewer"


async def test_a_resume_keeps_the_paused_runs_own_settings(
    server: Server, models: ScriptedOpenAI
) -> None:
    """Approval asked for by one run's context (not the assistant's); the client
    resumes with the answer alone and the rejection still holds."""
    client = server.client()
    thread_id = (await client.threads.create())["thread_id"]
    context = {
        "approve_prompts": True,
        "generator_model": f"openai:gen-none@{models.url}",
        "optimizer_model": optimizer(models, "opt-per-run", "Per run. FIX"),
        "budget": ONE_STEP,
    }
    _, _, errors = await stream(
        client, thread_id, "sipdo", input={"prompt": INITIAL, "seed_tasks": SEED}, context=context
    )
    assert errors == []
    assert (await client.threads.get_state(thread_id))["next"] == ["approve"]
    _, values, errors = await stream(
        client, thread_id, "sipdo", command={"resume": {"approved": False}}
    )
    assert errors == []
    assert values["best_prompt"] == INITIAL
    assert values["iteration"] == 1  # the run's own budget (one iteration) carried on
    assert values["stop_reason"] == "iterations"


async def test_killed_server_resumes_the_thread_from_its_checkpoint(
    server: Server, models: ScriptedOpenAI, approving: str
) -> None:
    client = server.client()
    spec = optimizer(models, "opt-restart", "Survived. FIX")
    thread_id, payload = await _until_approval(client, approving, spec)
    paused = time.time()
    assert payload["candidate"] == "Survived. FIX"
    await asyncio.to_thread(server.wait_flushed, paused)
    server.kill()
    server.start()
    client = server.client()
    state = await client.threads.get_state(thread_id)
    assert state["next"] == ["approve"]
    assert state["tasks"][0]["interrupts"][0]["value"]["candidate"] == "Survived. FIX"
    _, values, errors = await stream(
        client, thread_id, approving, command={"resume": {"approved": True}}
    )
    assert errors == []
    assert values["best_prompt"] == "Survived. FIX"
    assert models.calls("opt-restart") == 3  # nothing before the interrupt ran again
    assert server.stop() == 0
    assert "sipdo serve: sandbox closed" in server.log.read_text()
