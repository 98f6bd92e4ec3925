"""``open_sandbox``: picks a backend, says why, and refuses what it cannot do."""

from __future__ import annotations

import glob
import logging
import os
import tempfile

import pytest

from sipdo.errors import ConfigurationError, SandboxUnavailableError
from sipdo.sandbox import Limits, open_sandbox
from sipdo.sandbox.process import BASIC_ISOLATION, ProcessSandbox


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="auto, docker, process"):
        open_sandbox("vm")


def test_auto_falls_back_to_process_and_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with caplog.at_level(logging.INFO, logger="sipdo.sandbox.factory"):
        sandbox = open_sandbox("auto", pool_size=3)  # docker-only options are dropped
    with sandbox:
        assert sandbox.kind == "process"
        assert sandbox.run({}, ["python", "-c", "print(7)"]).stdout == "7\n"
    assert "process backend because" in caplog.text
    assert "unreachable" in caplog.text


def test_explicit_docker_without_engine_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(SandboxUnavailableError, match="unreachable"):
        open_sandbox("docker")


@pytest.mark.docker
def test_auto_picks_docker_when_available(
    docker_client: object, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="sipdo.sandbox.factory"),
        open_sandbox(pool_size=0) as sb,
    ):
        assert sb.kind == "docker"
    assert "using docker" in caplog.text


def test_auto_with_missing_image_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="sipdo.sandbox.factory"):
        sandbox = open_sandbox("auto", image="sipdo-no-such-image:never")
    with sandbox:
        assert sandbox.kind == "process"
    assert "process backend because" in caplog.text


def test_process_defaults_and_limits_pass_through() -> None:
    with open_sandbox("process", limits=Limits(timeout_s=3)) as sandbox:
        assert isinstance(sandbox, ProcessSandbox)
        assert sandbox.limits.timeout_s == 3


def test_basic_process_mode_claims_little_and_cleans_up() -> None:
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "sipdo-run-*")))
    with ProcessSandbox(namespaces=False) as sandbox:
        assert sandbox.isolation == BASIC_ISOLATION
        result = sandbox.run({"a.txt": "x"}, ["python", "-c", "import os; print(os.listdir('.'))"])
        assert "a.txt" in result.stdout
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "sipdo-run-*"))) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root")
def test_jailed_process_mode_leaves_no_root_dir() -> None:
    sandbox = ProcessSandbox(namespaces=True)
    root = sandbox._root
    assert os.path.isdir(root)
    sandbox.close()
    assert not os.path.exists(root)


@pytest.mark.skipif(os.geteuid() == 0, reason="runs as root here")
def test_namespaces_required_without_root_raises() -> None:
    with pytest.raises(SandboxUnavailableError):
        ProcessSandbox(namespaces=True)


def test_closed_sandbox_refuses_runs() -> None:
    sandbox = ProcessSandbox()
    sandbox.close()
    with pytest.raises(Exception, match="closed"):
        sandbox.run({}, ["true"])
