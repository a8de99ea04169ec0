"""Settings: defaults for one node, validation that names the variable and never the value."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

import pytest

from securepacs.server.settings import ConfigError, load_settings

if TYPE_CHECKING:
    from pathlib import Path


def test_settings_defaults_are_one_node(tmp_path: Path) -> None:
    settings = load_settings({"SECUREPACS_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'securepacs.db'}"
    assert settings.blob_url == (tmp_path / "blobs").as_uri()
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.smtp_url is None
    assert not settings.behind_tls
    secret = tmp_path / "server-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    again = load_settings({"SECUREPACS_DATA_DIR": str(tmp_path)})
    assert again.secret_key == settings.secret_key


@pytest.mark.parametrize(
    ("value", "features"),
    [
        (None, ("advanced_viewer",)),
        ("", ()),
        (" advanced_viewer , advanced_viewer", ("advanced_viewer",)),
    ],
)
def test_settings_features_default_on_and_can_be_switched_off(
    tmp_path: Path, value: str | None, features: tuple[str, ...]
) -> None:
    env = {"SECUREPACS_DATA_DIR": str(tmp_path)}
    if value is not None:
        env["SECUREPACS_FEATURES"] = value
    assert load_settings(env).features == features


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("DATABASE_URL", "mysql://root:hunter2-canary@db/x"),
        ("BLOB_URL", "ftp://hunter2-canary@host/x"),
        ("PUBLIC_URL", "pacs.example?token=hunter2-canary"),
        ("SMTP_URL", "http://hunter2-canary@mail"),
        ("SECRET_KEY", "hunter2-canary"),
        ("LOG_LEVEL", "hunter2-canary"),
        ("SESSION_HOURS", "0"),
        ("FEATURES", "advanced_viewer,hunter2-canary"),
    ],
)
def test_settings_invalid_value_names_the_variable_not_the_value(
    tmp_path: Path, name: str, value: str
) -> None:
    env = {"SECUREPACS_DATA_DIR": str(tmp_path), f"SECUREPACS_{name}": value}
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert f"SECUREPACS_{name}" in str(raised.value)
    assert "hunter2-canary" not in str(raised.value)


def test_settings_repr_hides_credentials(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "SECUREPACS_DATA_DIR": str(tmp_path),
            "SECUREPACS_DATABASE_URL": "postgresql+asyncpg://u:hunter2-canary@db/x",
            "SECUREPACS_SMTP_URL": "smtps://u:hunter2-canary@mail.example",
            "SECUREPACS_PUBLIC_URL": "https://pacs.example",
        }
    )
    assert "hunter2-canary" not in repr(settings)
    assert settings.secret_key.hex() not in repr(settings)
    assert settings.behind_tls


def test_cli_check_config_reports_a_bad_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from securepacs.server.__main__ import main

    monkeypatch.setenv("SECUREPACS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SECUREPACS_PORT", "-1")
    assert main(["check-config"]) == 2
    assert "SECUREPACS_PORT" in capsys.readouterr().err
    monkeypatch.setenv("SECUREPACS_PORT", "8001")
    assert main(["check-config"]) == 0


def test_cli_db_upgrade_creates_the_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from securepacs.server.__main__ import main

    monkeypatch.setenv("SECUREPACS_DATA_DIR", str(tmp_path))
    assert main(["db", "upgrade"]) == 0
    with sqlite3.connect(tmp_path / "securepacs.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"account", "key_slot", "session", "two_factor"} <= tables
