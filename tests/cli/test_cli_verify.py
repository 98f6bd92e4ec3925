"""``sipdo verify`` as a user runs it: a real subprocess, real sandbox, files in and out."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.verifiers.datasetkit import SOUND, TWICE, WRONG_REFERENCE, read_jsonl, write_jsonl

Sipdo = Callable[..., subprocess.CompletedProcess[str]]


def test_verify_tasks_prints_summary_progress_and_report(tmp_path: Path, sipdo: Sipdo) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [TWICE, "not json", WRONG_REFERENCE])
    out, report = tmp_path / "v.jsonl", tmp_path / "report.html"
    result = sipdo(
        "verify",
        str(tasks),
        "-o",
        str(out),
        "--jobs",
        "2",
        "--sandbox",
        "process",
        "--report",
        str(report),
    )
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out)
    assert [(r["task_id"], r["passed"], r["status"]) for r in rows] == [
        ("twice", True, "accepted"),
        (None, False, "unreadable"),
        ("wrong-ref", False, "rejected"),
    ]
    assert "sipdo verify" in result.stdout  # the summary table
    assert "accepted" in result.stdout
    assert "not passed: reference" in result.stdout
    assert "3/3" in result.stderr
    assert "rows/s" in result.stderr
    assert "ETA" in result.stderr
    page = report.read_text("utf-8")
    assert "Verdicts by status" in page
    assert "Why rows did not pass" in page
    assert "plotly" in page.lower()
    assert "<script src=" not in page


def test_verify_solutions_resume_and_refusals(tmp_path: Path, sipdo: Sipdo) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [TWICE, SOUND, "not json"])
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": "twice", "completion": "    return x + x\n"},
            {"task_id": "twice", "solution": "def twice(x):\n    return 3 * x\n"},
        ],
    )
    out = tmp_path / "graded.jsonl"
    args = [
        "verify",
        str(tasks),
        "--solutions",
        str(samples),
        "-o",
        str(out),
        "--sandbox",
        "process",
        "--k",
        "1,2",
        "--no-progress",
    ]
    first = sipdo(*args)
    assert first.returncode == 0, first.stderr
    assert [r["passed"] for r in read_jsonl(out)] == [True, False]
    assert "pass@1" in first.stdout
    assert "pass@2" in first.stdout
    assert "unreadable task rows" in first.stdout
    assert "1 task row(s) could not be read" in first.stderr
    assert "row 3: invalid JSON" in first.stderr
    refused = sipdo(*args)
    assert refused.returncode == 1
    assert "--resume continues it, --overwrite replaces it" in refused.stderr
    assert len(read_jsonl(out)) == 2  # nothing lost
    again = sipdo(*args, "--resume")
    assert again.returncode == 0, again.stderr
    assert len(read_jsonl(out)) == 2  # both rows were kept, none redone


def test_verify_solutions_keep_the_reference_runs_for_the_next_file(
    tmp_path: Path, sipdo: Sipdo
) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [TWICE, SOUND])
    cache = tmp_path / "cache" / "refs.sqlite"
    graded = []
    for i, solution in enumerate(["    return x + x\n", "    return x * 3\n"]):
        samples = write_jsonl(
            tmp_path / f"s{i}.jsonl", [{"task_id": "twice", "completion": solution}]
        )
        out = tmp_path / f"g{i}.jsonl"
        result = sipdo(
            "verify",
            str(tasks),
            "--solutions",
            str(samples),
            "-o",
            str(out),
            "--sandbox",
            "process",
            "--no-progress",
            "--reference-cache",
            str(cache),
        )
        assert result.returncode == 0, result.stderr
        graded.append([r["passed"] for r in read_jsonl(out)])
    assert graded == [[True], [False]]
    import sqlite3

    with sqlite3.connect(cache) as db:
        assert db.execute("SELECT COUNT(*) FROM reference_sides").fetchone() == (1,)
    refused = sipdo(
        "verify", str(tasks), "-o", str(tmp_path / "t.jsonl"), "--reference-cache", str(cache)
    )
    assert refused.returncode == 1
    assert "serves solutions mode" in refused.stderr


def test_verify_solutions_on_the_tests_alone(tmp_path: Path, sipdo: Sipdo) -> None:
    """--tests-only: what the tests see decides (a table of the tests' answers passes it,
    full grading's generated inputs do not)."""
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [TWICE])
    table = "def twice(x):\n    return {1: 2, 2: 4, 0: 0, -3: -6}.get(x, 7)\n"
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": "twice", "completion": "    return x + x\n"},
            {"task_id": "twice", "solution": "def twice(x):\n    return 3 * x\n"},
            {"task_id": "twice", "solution": table},
        ],
    )
    passed = {}
    for mode in ("--tests-only", "--no-tests-only"):
        out = tmp_path / f"graded{mode}.jsonl"
        args = ["verify", str(tasks), "--solutions", str(samples), "-o", str(out)]
        result = sipdo(*args, "--sandbox", "process", "--no-progress", mode)
        assert result.returncode == 0, result.stderr
        passed[mode] = [r["passed"] for r in read_jsonl(out)]
    assert passed["--no-tests-only"] == [True, False, False]
    assert passed["--tests-only"] == [True, False, True]


def test_verify_bad_arguments_say_why(tmp_path: Path, sipdo: Sipdo) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [TWICE])
    out = str(tmp_path / "v.jsonl")
    cases = [
        (["verify", str(tmp_path / "nope.jsonl"), "-o", out], "no such file"),
        (["verify", str(tasks), "-o", out, "--map", "tests"], "FIELD=PATH"),
        (["verify", str(tasks), "-o", out, "--engine", "spark"], "available: local, ray"),
        (
            ["verify", str(tasks), "-o", out, "--format", "apps", "--sandbox", "process"],
            "available: auto, sipdo, humaneval, mbpp",
        ),
        (["verify", str(tasks), "-o", out, "--k", "0"], "--k wants integers >= 1"),
        (["verify", str(tasks), "-o", str(tasks), "--overwrite"], "overwrite an input"),
        (["verify", str(tasks), "-o", out, "--tests-only"], "--tests-only grades samples"),
    ]
    for args, words in cases:
        result = sipdo(*args, "--no-progress")
        assert result.returncode == 1, (args, result.stderr)
        assert words in result.stderr, (args, result.stderr)
    assert json.loads(tasks.read_text())["task_id"] == "twice"  # input untouched


def test_verify_map_reads_another_layout(tmp_path: Path, sipdo: Sipdo) -> None:
    row = {
        "uid": "u1",
        "spec": {"fn": "twice", "code": TWICE["reference_solution"]},
        "checks": TWICE["tests"],
        "question": TWICE["prompt"],
    }
    tasks = write_jsonl(tmp_path / "odd.jsonl", [row])
    out = tmp_path / "v.jsonl"
    result = sipdo(
        "verify",
        str(tasks),
        "-o",
        str(out),
        "--sandbox",
        "process",
        "--no-progress",
        "--map",
        "task_id=uid",
        "--map",
        "entry_point=spec.fn",
        "--map",
        "reference_solution=spec.code",
        "--map",
        "tests=checks",
        "--map",
        "prompt=question",
    )
    assert result.returncode == 0, result.stderr
    [verdict] = read_jsonl(out)
    assert (verdict["task_id"], verdict["passed"]) == ("u1", True)
