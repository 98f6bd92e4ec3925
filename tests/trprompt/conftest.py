"""TRPrompt fixtures: the tiny base model, a recorded run, a trained first round.

Skips the module when the ``train`` extra is missing (locally); under ``CI=true``
the extra is installed by ``scripts/setup.sh`` and a missing one fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipdo.plugins.domains.code import CodeDomain
from sipdo.sandbox import Sandbox
from sipdo.store import RunStore
from sipdo.verifiers import VerifierConfig
from tests.trprompt.kit import config, record_run, scripted_learner, tiny_base


def require_train_extra() -> None:
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the train extra must be installed under CI=true: {exc}")
        pytest.skip(f"the train extra is not installed: {exc}")


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_train_extra()
    return tiny_base(tmp_path_factory.mktemp("tiny-base"))


@pytest.fixture(scope="session")
def light_domain() -> CodeDomain:
    """The code domain with a small differential budget: these tests are about training."""
    return CodeDomain(VerifierConfig(n_standard=10, n_extended=10, shrink_rounds=0))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore(f"sqlite:///{tmp_path / 'runs.db'}") as s:
        record_run(s)
        yield s


@pytest.fixture(scope="session")
def first_round(
    tmp_path_factory: pytest.TempPathFactory,
    base_dir: Path,
    light_domain: CodeDomain,
    process_sandbox: Sandbox,
) -> Path:
    """A prompt model after round 1 (a pristine copy for each test: see ``trained``)."""
    from sipdo.trprompt import train_prompt_model

    root = tmp_path_factory.mktemp("first-round")
    with RunStore(f"sqlite:///{root / 'runs.db'}") as s:
        record_run(s)
        train_prompt_model(
            s,
            ["run-1"],
            root / "pm",
            config(base_dir, rounds=1),
            learner=scripted_learner(),
            sandbox=process_sandbox,
            domain=light_domain,
        )
    return root / "pm"


@pytest.fixture
def trained(first_round: Path, tmp_path: Path) -> Path:
    """This test's own copy of the round-1 prompt model."""
    return Path(shutil.copytree(first_round, tmp_path / "pm"))
