"""``evaluate_prompt`` / ``grade_samples``: scripted model, real sandbox, real SQLite store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage

from sipdo.errors import ConfigurationError, ModelUnavailableError
from sipdo.evaluation import aevaluate_prompt, evaluate_prompt, grade_samples, load_benchmark
from sipdo.sandbox import Sandbox
from sipdo.store import RunStore
from sipdo.testing import ScriptedChatModel
from tests.evaluation.helpers import ABS, ANSWERS, BROKEN, DOUBLE, by_entry, write_jsonl


def test_both_gradings_and_their_disagreements(process_sandbox: Sandbox, tmp_path: Path) -> None:
    model = ScriptedChatModel(responder=by_entry(ANSWERS))
    with RunStore(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        result = evaluate_prompt(
            "Be exact.", model, [ABS, DOUBLE], sandbox=process_sandbox, store=store
        )
        stored = {r.task_id: r for r in store.eval_results(result.eval_id)}
        record = store.get_eval(result.eval_id)
    # absval hard-codes the tested inputs: it passes the tests, not the full check.
    assert result.pass_at_k == {"base": {1: 1.0}, "full": {1: 0.5}}
    assert [(d.task_id, d.base_passed, d.full_passed) for d in result.disagreements] == [
        ("absval", True, False)
    ]
    assert "absval(" in result.disagreements[0].feedback
    assert [(t.task_id, t.n, t.base, t.full) for t in result.tasks] == [
        ("absval", 1, 1, 0),
        ("double", 1, 1, 1),
    ]
    assert result.settings["temperature"] == 0.0
    assert result.settings["seed"] == 0
    assert all(call.kwargs.get("temperature") == 0.0 for call in model.calls)
    assert "Be exact." in model.calls[0].text  # the prompt under evaluation is the system prompt
    assert stored["absval"].answer.startswith("def absval")
    assert (stored["absval"].base_passed, stored["absval"].full_passed) == (True, False)
    assert record.status == "finished"
    assert record.results == 2
    assert record.summary is not None
    assert record.summary["pass_at_k"]["full"] == {"1": 0.5}
    assert result.usage.calls == 2
    assert result.usage.input_tokens > 0


def test_a_reply_without_code_fails_and_a_broken_task_is_listed_not_scored(
    process_sandbox: Sandbox, tmp_path: Path
) -> None:
    answers = {"absval": "I am not sure how to do this.", "one": ANSWERS["one"]}
    model = ScriptedChatModel(responder=by_entry(answers))
    with RunStore(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        result = evaluate_prompt("P", model, [ABS, BROKEN], sandbox=process_sandbox, store=store)
        # Ungradable tasks may have met a passing fault: the same eval tries them again.
        again = evaluate_prompt("P", model, [ABS, BROKEN], sandbox=process_sandbox, store=store)
    assert [(t.task_id, t.n, t.full) for t in result.tasks] == [("absval", 1, 0)]
    assert result.pass_at_1 == 0.0
    [problem] = result.problems
    assert problem.task_id == "broken"
    assert problem.status == "task_error"
    assert "reference fails its own tests" in problem.feedback
    assert again.kept == 1
    assert sum("def one(" in c.text for c in model.calls) == 2  # absval solved once


def test_pass_at_k_over_several_samples_with_their_temperature(process_sandbox: Sandbox) -> None:
    wrong = "```python\ndef double(x: int) -> int:\n    return x\n```"
    model = ScriptedChatModel(responses=[wrong, ANSWERS["double"], wrong])
    result = evaluate_prompt(
        "P", model, [DOUBLE], sandbox=process_sandbox, samples_per_task=3, jobs=1
    )
    assert result.settings["temperature"] == 0.8  # sampling, so pass@k means something
    assert [c.kwargs["temperature"] for c in model.calls] == [0.8, 0.8, 0.8]
    assert result.tasks[0].n == 3
    assert result.tasks[0].full == 1
    assert result.pass_at_k["full"] == pytest.approx({1: 1 / 3, 3: 1.0})


def test_a_failed_eval_resumes_without_solving_again(
    process_sandbox: Sandbox, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    tasks = [ABS, DOUBLE]
    down = ScriptedChatModel(
        responses=[ANSWERS["absval"], ModelUnavailableError("server went away")]
    )
    with RunStore(url) as store, pytest.raises(ModelUnavailableError):
        evaluate_prompt("P", down, tasks, sandbox=process_sandbox, store=store, jobs=1)
    with RunStore(url) as store:
        [interrupted] = store.list_evals()
        assert interrupted.status == "interrupted"
        assert interrupted.results == 1
        again = ScriptedChatModel(responder=by_entry(ANSWERS))
        result = evaluate_prompt("P", again, tasks, sandbox=process_sandbox, store=store)
        assert result.eval_id == interrupted.eval_id  # same settings, same eval
        assert store.get_eval(result.eval_id).status == "finished"
    assert len(again.calls) == 1
    assert "def double(" in again.calls[0].text
    assert result.kept == 1
    assert [t.task_id for t in result.tasks] == ["absval", "double"]


def test_an_explicit_eval_id_refuses_other_settings(
    process_sandbox: Sandbox, tmp_path: Path
) -> None:
    with RunStore(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        model = ScriptedChatModel(responder=by_entry(ANSWERS))
        evaluate_prompt("P", model, [DOUBLE], sandbox=process_sandbox, store=store, eval_id="e")
        with pytest.raises(ConfigurationError, match="other settings"):
            evaluate_prompt(
                "another prompt",
                model,
                [DOUBLE],
                sandbox=process_sandbox,
                store=store,
                eval_id="e",
            )


def test_the_async_twin_runs_inside_a_loop_and_the_blocking_one_refuses(
    process_sandbox: Sandbox,
) -> None:
    async def main() -> float | None:
        model = ScriptedChatModel(responder=by_entry(ANSWERS))
        with pytest.raises(ConfigurationError, match="event loop"):
            evaluate_prompt("P", model, [DOUBLE], sandbox=process_sandbox)
        result = await aevaluate_prompt("P", model, [DOUBLE], sandbox=process_sandbox)
        return result.pass_at_1

    assert asyncio.run(main()) == 1.0


def test_samples_file_bad_rows_are_reported_and_nothing_is_lost(
    process_sandbox: Sandbox, tmp_path: Path
) -> None:
    tasks = load_benchmark("humaneval", limit=2)
    first, second = tasks
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": "HumanEval/0", "solution": first.reference_solution},
            {"task_id": "HumanEval/1", "completion": "    return []\n"},
            "{not json",
            {"task_id": "HumanEval/0"},
            {"task_id": "HumanEval/99", "solution": "def f(): pass"},
            ["a", "list"],
            {"task_id": "HumanEval/1", "solution": 42},
        ],
    )
    with RunStore(f"sqlite:///{tmp_path / 'runs.db'}") as store:
        result = grade_samples(samples, tasks, sandbox=process_sandbox, store=store)
        stored = store.eval_results(result.eval_id)
    assert [(t.task_id, t.n, t.base, t.full) for t in result.tasks] == [
        ("HumanEval-0", 1, 1, 1),
        ("HumanEval-1", 1, 0, 0),
    ]
    reasons = sorted((p.status, p.feedback) for p in result.problems)
    assert [s for s, _ in reasons] == ["bad_row", "bad_row", "bad_row", "bad_row", "unknown_task"]
    text = " | ".join(f for _, f in reasons)
    for expected in (
        "line 3: not JSON",
        "line 4: neither solution nor completion",
        "line 5: unknown task id 'HumanEval-99'",
        "line 6: a sample row must be a JSON object",
        "line 7: solution must be a string",
    ):
        assert expected in text
    assert len(stored) == 7  # one stored row per input row
    assert second.prompt in next(r.answer for r in stored if r.task_id == "HumanEval-1")


@pytest.mark.docker
def test_eval_on_the_docker_backend(docker_sandbox: Sandbox) -> None:
    model = ScriptedChatModel(responder=by_entry(ANSWERS))
    result = evaluate_prompt("P", model, [ABS, DOUBLE], sandbox=docker_sandbox)
    assert result.pass_at_k == {"base": {1: 1.0}, "full": {1: 0.5}}


class SeededModel(ScriptedChatModel):
    """A scripted model that takes a seed, like the local and OpenAI models."""

    seed: int = 0


def test_each_sample_gets_its_own_seed_where_the_model_takes_one(
    process_sandbox: Sandbox,
) -> None:
    model = SeededModel(responder=by_entry(ANSWERS))
    result = evaluate_prompt(
        "P",
        model,
        [DOUBLE],
        sandbox=process_sandbox,
        samples_per_task=2,
        seed=7,
        jobs=1,
        temperature=0.3,
    )
    assert sorted(c.kwargs["seed"] for c in model.calls) == [7, 8]
    assert {c.kwargs["temperature"] for c in model.calls} == {0.3}
    assert (result.settings["seed"], result.settings["temperature"]) == (7, 0.3)


def test_code_tasks_graded_with_demonstrations_shown_first(process_sandbox: Sandbox) -> None:
    """A version carrying demonstrations is graded on code tasks (``CodeTask``, as the
    held-out sets load) with them shown as an earlier exchange, and graded two ways as
    the code domain grades: the wrapper's own name does not change how."""
    from langchain_core.messages import AIMessage

    from sipdo.graph.demonstrations import Demonstrating
    from sipdo.plugins.domains.code import CodeDomain

    demo = {
        "id": "demo-1",
        "task_id": "shown",
        "task": {"id": "shown", "prompt": "def five() -> int:\n    ...\n", "entry_point": "five"},
        "reply": "```python\ndef five() -> int:\n    return 5\n```",
    }
    seen: list[list[BaseMessage]] = []

    def respond(messages: list[BaseMessage]) -> str:
        seen.append(messages)
        return by_entry(ANSWERS)(messages)

    result = evaluate_prompt(
        "p",
        ScriptedChatModel(responder=respond),
        [DOUBLE],
        sandbox=process_sandbox,
        domain=Demonstrating(CodeDomain(), [demo]),
    )
    [graded] = result.tasks
    assert graded.full == 1
    assert graded.base == 1
    [messages] = seen
    assert any(isinstance(m, AIMessage) and "return 5" in str(m.content) for m in messages)
