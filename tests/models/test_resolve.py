"""Model specs and per-role defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sipdo.errors import ConfigurationError, ModelUnavailableError
from sipdo.plugins.models import default_model_spec, resolve_model
from sipdo.plugins.models.llama import ChatLocalLlama
from sipdo.plugins.models.openai_compat import SipdoChatOpenAI
from sipdo.plugins.models.resolve import LOCAL_MAX_TOKENS, ROLE_ENV
from sipdo.testing import ScriptedChatModel

ROLES = ("learner", "generator", "checker", "optimizer")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in [*ROLE_ENV.values(), "OPENAI_API_KEY", "OPENAI_BASE_URL"]:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_offline_defaults(clean_env: pytest.MonkeyPatch) -> None:
    assert default_model_spec("learner") == "local:qwen2.5-coder-0.5b"
    for role in ROLES[1:]:
        assert default_model_spec(role) == "local:qwen2.5-coder-1.5b"


def test_openai_defaults_when_a_key_is_set(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_API_KEY", "sk-test")
    assert {default_model_spec(r) for r in ROLES} == {"openai:gpt-4o-mini"}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_has_its_env_override(clean_env: pytest.MonkeyPatch, role: str) -> None:
    clean_env.setenv("OPENAI_API_KEY", "sk-test")
    clean_env.setenv(ROLE_ENV[role], "openai:my-model@http://127.0.0.1:1/v1")
    assert default_model_spec(role) == "openai:my-model@http://127.0.0.1:1/v1"
    others = [r for r in ROLES if r != role]
    assert all(default_model_spec(r) == "openai:gpt-4o-mini" for r in others)


def test_none_resolves_through_the_role_default(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SIPDO_CHECKER_MODEL", "openai:checker-model@http://127.0.0.1:9/v1")
    model = resolve_model(None, role="checker")
    assert isinstance(model, SipdoChatOpenAI)
    assert model.model_name == "checker-model"


def test_unknown_role(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="learner, generator, checker, optimizer"):
        default_model_spec("critic")


def test_instances_pass_through() -> None:
    scripted = ScriptedChatModel(responses=["hi"])
    assert resolve_model(scripted, role="generator") is scripted


@pytest.mark.parametrize("spec", ["", "   "])
def test_empty_spec_is_a_configuration_error(spec: str) -> None:
    with pytest.raises(ConfigurationError):
        resolve_model(spec)


def test_openai_with_base_url(clean_env: pytest.MonkeyPatch) -> None:
    model = resolve_model("openai:qwen@http://127.0.0.1:8000/v1")
    assert isinstance(model, SipdoChatOpenAI)
    assert model.model_name == "qwen"
    assert model.openai_api_base == "http://127.0.0.1:8000/v1"
    assert model.sipdo_json_schema


@pytest.mark.parametrize("spec", ["openai:@http://x/v1", "openai:m@ftp://host/v1"])
def test_bad_openai_specs(clean_env: pytest.MonkeyPatch, spec: str) -> None:
    with pytest.raises(ConfigurationError):
        resolve_model(spec)


def test_openai_without_key_or_url_is_unavailable(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelUnavailableError, match="gpt-4o-mini"):
        resolve_model("openai:gpt-4o-mini")


def test_missing_gguf_file(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="not found"):
        resolve_model(str(tmp_path / "nope.gguf"))


def test_unknown_init_chat_model_provider() -> None:
    with pytest.raises(ModelUnavailableError, match="no-such-provider"):
        resolve_model("no-such-provider:some-model")


def test_llama_threads_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from sipdo.plugins.models.llama import default_threads

    monkeypatch.setenv("SIPDO_LLAMA_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("SIPDO_LLAMA_THREADS", "zero")
    assert default_threads() == (os.cpu_count() or 1)


def test_local_models_get_per_role_output_caps(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")  # only resolved here, never loaded
    models = {role: resolve_model(str(gguf), role=role) for role in LOCAL_MAX_TOKENS}
    caps = {role: m.max_tokens for role, m in models.items() if isinstance(m, ChatLocalLlama)}
    assert caps == LOCAL_MAX_TOKENS
    assert caps["generator"] > caps["learner"]
