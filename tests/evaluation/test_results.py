"""The pure parts of an eval: folding records into pass@k, ids, samples rows, subsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipdo.evaluation import read_subset, summarize
from sipdo.evaluation.plan import Job, plan
from sipdo.evaluation.results import SampleRecord, default_ks, derive_eval_id
from sipdo.evaluation.samples import parse_row, sample_jobs
from tests.evaluation.helpers import ABS, DOUBLE


def rec(task: str, sample: int, status: str, base: bool, full: bool) -> SampleRecord:
    return SampleRecord(task, sample, status, "code", base, full, "why")


def test_summarize_counts_no_code_as_failure_and_lists_ungradable_rows() -> None:
    records = [
        rec("b", 0, "graded", True, False),
        rec("b", 1, "graded", True, True),
        rec("a", 0, "no_code", False, False),
        rec("a", 1, "graded", True, True),
        rec("c", 0, "task_error", False, False),
        rec("line-7", 0, "bad_row", False, False),
    ]
    result = summarize(
        records, eval_id="e", model="m", benchmark="x", settings={}, ks=(1, 2, 5), order=["a", "b"]
    )
    assert [(t.task_id, t.n, t.base, t.full) for t in result.tasks] == [
        ("a", 2, 1, 1),
        ("b", 2, 2, 1),
    ]
    assert result.pass_at_k["base"] == {1: 0.75, 2: 1.0}  # k=5 > n: not reported
    assert result.pass_at_k["full"] == {1: 0.5, 2: 1.0}
    assert [(d.task_id, d.sample) for d in result.disagreements] == [("b", 0)]
    assert [p.task_id for p in result.problems] == ["c", "line-7"]
    assert result.summary()["passed"] == {"base": 3, "full": 2}


def test_ids_and_default_ks() -> None:
    assert default_ks(1) == (1,)
    assert default_ks(20) == (1, 10, 20)
    one = derive_eval_id({"prompt": "p", "seed": 0})
    assert one == derive_eval_id({"seed": 0, "prompt": "p"})
    assert one != derive_eval_id({"prompt": "p", "seed": 1})


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("[1]", "a sample row must be a JSON object"),
        ('{"solution": "x"}', "no task_id"),
        ('{"task_id": true, "solution": "x"}', "no task_id"),
        ('{"task_id": "HumanEval/1"}', "neither solution nor completion"),
        ('{"task_id": "HumanEval/1", "completion": ["x"]}', "completion must be a string"),
        ("{", "not JSON"),
    ],
)
def test_unusable_samples_rows_say_why(line: str, error: str) -> None:
    row = parse_row(4, line)
    assert row.error is not None
    assert row.error.startswith("line 4: ")
    assert error in row.error


def test_sample_jobs_number_samples_per_task_and_complete_prompts() -> None:
    rows = [
        parse_row(1, '{"task_id": "double", "completion": "    return 2 * x\\n"}'),
        parse_row(2, '{"task_id": "double", "solution": "def double(x): return x"}'),
        parse_row(3, '{"task_id": "nope", "solution": "x"}'),
        parse_row(4, "junk"),
    ]
    jobs = sample_jobs(rows, [ABS, DOUBLE])
    assert [(j.task_id, j.sample, j.problem and j.problem[0]) for j in jobs] == [
        ("double", 0, None),
        ("double", 1, None),
        ("nope", 0, "unknown_task"),
        ("line-4", 0, "bad_row"),
    ]
    assert jobs[0].answer == DOUBLE.prompt + "    return 2 * x\n"
    done = {("double", 0): rec("double", 0, "graded", True, True)}
    assert [(j.task_id, j.sample) for j in plan(jobs, done)] == [
        ("double", 1),
        ("nope", 0),
        ("line-4", 0),
    ]
    assert isinstance(jobs[0], Job)


def test_subset_files_take_ids_or_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "subset.txt"
    path.write_text('# a comment\nHumanEval/3\n\n{"task_id": "HumanEval/7"}\nabsval\n', "utf-8")
    assert read_subset(path) == ["HumanEval-3", "HumanEval-7", "absval"]


def test_the_tasks_digest_ignores_fields_left_at_their_defaults() -> None:
    from sipdo.evaluation.plan import tasks_digest

    assert tasks_digest([ABS]) == tasks_digest([ABS.model_copy(update={"weakness": ""})])
    assert tasks_digest([ABS]) != tasks_digest([ABS.model_copy(update={"weakness": "signs"})])
