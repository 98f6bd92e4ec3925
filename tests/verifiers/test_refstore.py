"""Reference sides kept on disk (``ReferenceStore``): reused only for the very same run,
never for a failed one, and a broken file or row loses nothing but the reuse."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sipdo.errors import ConfigurationError, VerificationError
from sipdo.sandbox import Sandbox
from sipdo.sandbox.process import ProcessSandbox
from sipdo.verifiers import CodeTask, VerifierConfig, verify_dataset, verify_solution
from sipdo.verifiers.refstore import ReferenceStore, dumps, loads, store_at
from tests.verifiers.datasetkit import SOUND, read_jsonl, write_jsonl
from tests.verifiers.recording import Recording

RIGHT = "def sum_of_squares(xs):\n    return sum(x * x for x in xs if x % 2 == 0)\n"
WRONG = "def sum_of_squares(xs):\n    return sum(x * x for x in xs if x % 2 == 0 and x > 0)\n"
LEAN = VerifierConfig(n_standard=20, n_extended=0)
ONE_TEST = (
    "from solution import sum_of_squares\n\ndef test_one():\n    assert sum_of_squares([2]) == 4\n"
)


def _grade(task: CodeTask, candidate: str, sandbox: Sandbox, store: ReferenceStore) -> Any:
    return verify_solution(task, candidate, sandbox=sandbox, config=LEAN, references=store)


def test_another_process_grades_without_the_reference_run(
    squares_task: CodeTask, process_sandbox: ProcessSandbox, tmp_path: Path
) -> None:
    path = tmp_path / "refs.sqlite"
    first = Recording(process_sandbox)
    right = _grade(squares_task, RIGHT, first, ReferenceStore(path))
    wrong = _grade(squares_task, WRONG, first, ReferenceStore(path))
    assert first.reference_runs == 1  # the memory cache served the second grading
    # Another process: a new store on the same file, a sandbox with an empty memory cache.
    later, store = Recording(process_sandbox), ReferenceStore(path)
    assert len(store) == 1
    again_right = _grade(squares_task, RIGHT, later, store)
    again_wrong = _grade(squares_task, WRONG, later, store)
    assert later.reference_runs == 0
    assert (store.hits, store.misses) == (1, 0)
    assert again_right.passed
    assert right.passed
    assert not again_wrong.passed
    assert again_wrong.feedback == wrong.feedback
    assert again_wrong.counterexample == wrong.counterexample


def test_a_stored_side_is_read_back_as_it_was(
    squares_task: CodeTask, process_sandbox: ProcessSandbox, tmp_path: Path
) -> None:
    from sipdo.verifiers.reference import reference_flow
    from sipdo.verifiers.runs import drive

    [ref] = drive(reference_flow(squares_task, LEAN), process_sandbox)
    back = loads(dumps(ref))
    assert back == ref
    assert back.fingerprint() == ref.fingerprint()


@pytest.mark.parametrize(
    "change",
    [
        {"tests": ONE_TEST},
        {"reference_solution": RIGHT},
        {"precondition": "len(xs) < 5"},
        {"argument_policy": "output"},
    ],
    ids=["tests", "reference", "precondition", "argument_policy"],
)
def test_any_other_run_is_made_anew(
    change: dict[str, str],
    squares_task: CodeTask,
    process_sandbox: ProcessSandbox,
    tmp_path: Path,
) -> None:
    store = ReferenceStore(tmp_path / "refs.sqlite")
    _grade(squares_task, RIGHT, Recording(process_sandbox), store)
    other = Recording(process_sandbox)
    _grade(squares_task.model_copy(update=change), RIGHT, other, store)
    assert other.reference_runs == 1
    assert len(store) == 2


def test_another_config_or_runtime_is_made_anew(
    squares_task: CodeTask, process_sandbox: ProcessSandbox, tmp_path: Path
) -> None:
    store = ReferenceStore(tmp_path / "refs.sqlite")
    _grade(squares_task, RIGHT, Recording(process_sandbox), store)
    more_inputs = Recording(process_sandbox)
    verify_solution(
        squares_task,
        RIGHT,
        sandbox=more_inputs,
        config=VerifierConfig(n_standard=21, n_extended=0),
        references=store,
    )
    assert more_inputs.reference_runs == 1
    elsewhere = Recording(process_sandbox, runtime="docker sha256:another-image")
    _grade(squares_task, RIGHT, elsewhere, store)
    assert elsewhere.reference_runs == 1
    assert len(store) == 3


def test_a_sandbox_of_unknown_runtime_keeps_nothing(
    squares_task: CodeTask, process_sandbox: ProcessSandbox, tmp_path: Path
) -> None:
    store = ReferenceStore(tmp_path / "refs.sqlite")
    unknown = Recording(process_sandbox, runtime=None)
    assert _grade(squares_task, RIGHT, unknown, store).passed
    assert len(store) == 0
    assert store.kept == 0


def test_a_failed_reference_is_not_kept(
    squares_task: CodeTask, process_sandbox: ProcessSandbox, tmp_path: Path
) -> None:
    store = ReferenceStore(tmp_path / "refs.sqlite")
    broken = squares_task.model_copy(update={"reference_solution": WRONG.replace("> 0", "> 1")})
    with pytest.raises(VerificationError):
        _grade(broken, RIGHT, Recording(process_sandbox), store)
    assert len(store) == 0


def test_an_unreadable_entry_is_dropped_and_the_run_made_again(
    squares_task: CodeTask,
    process_sandbox: ProcessSandbox,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "refs.sqlite"
    _grade(squares_task, RIGHT, Recording(process_sandbox), ReferenceStore(path))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE reference_sides SET body = ?", (json.dumps({"tests": 3}),))
    store, again = ReferenceStore(path), Recording(process_sandbox)
    with caplog.at_level(logging.WARNING, logger="sipdo.verifiers.refstore"):
        assert _grade(squares_task, RIGHT, again, store).passed
    assert "dropping an unreadable entry" in caplog.text
    assert again.reference_runs == 1
    assert len(store) == 1  # made again and kept again
    assert loads(sqlite3.connect(path).execute("SELECT body FROM reference_sides").fetchone()[0])


def test_a_file_that_is_not_a_store_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "refs.sqlite"
    path.write_bytes(b"these are not the bytes of a SQLite database" * 100)
    with pytest.raises(ConfigurationError, match="cannot be opened as a SQLite file"):
        ReferenceStore(path)
    assert path.read_bytes().startswith(b"these are not")  # left as it was


def test_verify_dataset_reuses_the_sides_in_the_next_run(
    tmp_path: Path, process_sandbox: ProcessSandbox
) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [SOUND])
    samples = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            {"task_id": "sound", "solution": SOUND["reference_solution"]},
            {"task_id": "sound", "solution": "def clamp_sum(xs, lo, hi):\n    return sum(xs)\n"},
        ],
    )
    cache = tmp_path / "refs.sqlite"
    verdicts = []
    for name in ("a.jsonl", "b.jsonl"):
        counting = Recording(process_sandbox)
        verify_dataset(
            tasks,
            solutions=samples,
            output=tmp_path / name,
            sandbox=counting,
            jobs=1,
            reference_cache=cache,
        )
        verdicts.append((counting.reference_runs, read_jsonl(tmp_path / name)))
    (runs_a, rows_a), (runs_b, rows_b) = verdicts
    # Rows in flight together make the side once (test_reference_once); the next run never.
    assert runs_a == 1
    assert runs_b == 0
    same = ("task_id", "passed", "status", "reason", "feedback", "counterexample")
    assert [[r[k] for k in same] for r in rows_a] == [[r[k] for k in same] for r in rows_b]
    assert [r["passed"] for r in rows_b] == [True, False]
    assert store_at(cache).hits >= 1


def test_a_reference_cache_is_refused_in_tasks_mode(tmp_path: Path) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [SOUND])
    with pytest.raises(ConfigurationError, match="serves solutions mode"):
        verify_dataset(
            tasks, output=tmp_path / "v.jsonl", sandbox="process", reference_cache=tmp_path / "r"
        )
    assert not (tmp_path / "v.jsonl").exists()


def test_runtimes_name_the_interpreter_or_the_image(process_sandbox: ProcessSandbox) -> None:
    import sys

    runtime = process_sandbox.runtime_id()
    assert runtime.startswith("process ")
    assert sys.version.split()[0] in runtime
    assert "hypothesis=" in runtime


@pytest.mark.docker
def test_a_docker_runtime_is_its_image_id() -> None:
    from tests.conftest import require_docker

    require_docker()
    from sipdo.sandbox.docker import DockerSandbox

    with DockerSandbox(mode="fresh", pool_size=1) as sandbox:
        image = sandbox.client.images.get(sandbox.image)
        assert sandbox.runtime_id() == f"docker {image.id}"
