"""Opening a store: default location, bad URLs, unreachable servers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sipdo.errors import ConfigurationError, StoreError
from sipdo.store import RunStore, default_url, sipdo_home


def test_default_location_follows_sipdo_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home" / "nested"
    monkeypatch.setenv("SIPDO_HOME", str(home))
    assert sipdo_home() == home
    assert default_url() == f"sqlite:///{home / 'runs.db'}"
    with RunStore() as store:
        store.create_run("r", {}, "p")
    assert (home / "runs.db").is_file()


def test_default_home_is_dot_sipdo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIPDO_HOME", raising=False)
    assert sipdo_home() == Path.home() / ".sipdo"


def test_malformed_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not a database URL"):
        RunStore("not a url")


def test_unknown_driver_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="no driver"):
        RunStore("postgresql+nosuchdriver://u@localhost/db")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_postgres_is_a_store_error() -> None:
    port = _closed_port()
    with pytest.raises(StoreError, match="cannot open the run store") as err:
        RunStore(f"postgresql+psycopg://postgres:secret@127.0.0.1:{port}/x?connect_timeout=2")
    assert "secret" not in str(err.value)
    assert err.value.__cause__ is not None


def test_unwritable_sqlite_location_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError):
        RunStore(f"sqlite:///{blocker / 'sub' / 'runs.db'}")
