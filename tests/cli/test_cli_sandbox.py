"""``sipdo sandbox check`` / ``build-image`` against the real backends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sipdo.cli import app
from sipdo.sandbox.engine import docker_problem

runner = CliRunner()


def test_check_process_backend_runs_hello_world() -> None:
    result = runner.invoke(app, ["sandbox", "check", "--kind", "process"])
    assert result.exit_code == 0, result.output
    assert "backend: ProcessSandbox (asked for explicitly)" in result.stdout
    assert "hello from the sandbox, python 3." in result.stdout
    assert "isolation:" in result.stdout
    assert "wall_time" in result.stdout


def test_check_auto_names_the_backend_and_why() -> None:
    result = runner.invoke(app, ["sandbox", "check"])
    assert result.exit_code == 0, result.output
    problem = docker_problem(None)
    if problem is None:
        assert "backend: DockerSandbox (the Docker engine answers" in result.stdout
    else:
        assert "backend: ProcessSandbox (Docker cannot be used:" in result.stdout
    assert "hello world: exit 0" in result.stdout


def test_check_unknown_kind_lists_kinds() -> None:
    result = runner.invoke(app, ["sandbox", "check", "--kind", "vm"])
    assert result.exit_code == 1
    assert "auto, docker, process" in result.stderr


def test_check_docker_without_an_engine_is_a_clean_error(tmp_path: Path) -> None:
    no_engine = {"DOCKER_HOST": f"unix://{tmp_path / 'no-docker.sock'}"}
    result = runner.invoke(app, ["sandbox", "check", "--kind", "docker"], env=no_engine)
    assert result.exit_code == 1
    assert "error:" in result.stderr
    assert "Traceback" not in result.output
    auto = runner.invoke(app, ["sandbox", "check"], env=no_engine)
    assert auto.exit_code == 0, auto.output
    assert "backend: ProcessSandbox (Docker cannot be used:" in auto.stdout


@pytest.mark.docker
def test_build_image_is_a_no_op_when_the_image_is_current() -> None:
    problem = docker_problem(None)
    if problem is not None:
        message = f"Docker sandbox image unavailable: {problem}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    result = runner.invoke(app, ["sandbox", "build-image"])
    assert result.exit_code == 0, result.output
    assert "sandbox image ready: sipdo-sandbox:latest (" in result.stdout
    assert "nothing to build" in result.output
