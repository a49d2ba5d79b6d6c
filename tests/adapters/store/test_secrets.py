"""Where secrets live (docs/threat-model.md): the embedded HS256 secret in the database or in a 0600 file, SQLite
database files created 0600, and `learnagg token` reading the same secret as the service."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from sqlalchemy import select, text

from learnagg import bootstrap
from learnagg.adapters.store import schema
from learnagg.adapters.store.secrets import file_secret
from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import app_secret
from learnagg.adapters.tokens import SECRET_NAME, token_keys
from learnagg.errors import ConfigurationError
from learnagg.settings import AuthSettings, Settings
from tests.entrypoints.cli.test_cli_flow import learnagg


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask() -> Iterator[None]:
    """The most permissive umask: the modes asserted below come from the code, not from the environment."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_secret_file_is_created_0600_and_reused(tmp_path: Path, umask: None) -> None:
    path = tmp_path / "keys" / "auth.secret"
    first = file_secret(str(path))
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert len(first) >= 32
    assert file_secret(str(path)) == first


def test_secret_file_written_by_the_operator_is_used_as_is(tmp_path: Path) -> None:
    path = tmp_path / "auth.secret"
    path.write_text("s" * 40 + "\n")
    path.chmod(0o640)
    assert file_secret(str(path)) == "s" * 40


@pytest.mark.parametrize(
    ("content", "file_mode", "message"),
    [
        ("s" * 40, 0o644, "accessible to other users (mode 0644)"),
        ("s" * 40, 0o606, "accessible to other users"),
        ("short", 0o600, "at least 32 characters"),
        ("", 0o600, "at least 32 characters"),
    ],
    ids=["world-readable", "world-writable", "short", "empty"],
)
def test_unsafe_or_weak_secret_files_are_refused(tmp_path: Path, content: str, file_mode: int, message: str) -> None:
    path = tmp_path / "auth.secret"
    path.write_text(content)
    path.chmod(file_mode)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        file_secret(str(path))


def test_a_directory_is_not_a_secret_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not a regular file"):
        file_secret(str(tmp_path))


def _stored_secret(app: bootstrap.App) -> str | None:
    with app.store.read() as conn:
        return conn.execute(select(app_secret.c.value).where(app_secret.c.name == SECRET_NAME)).scalar_one_or_none()


def test_by_default_the_embedded_secret_is_kept_in_the_database(app: bootstrap.App) -> None:
    keys = token_keys(app.settings.auth, app.store, app.clock())
    assert keys.embedded and keys.secret == _stored_secret(app)
    assert token_keys(app.settings.auth, app.store, app.clock()).secret == keys.secret


def test_with_secret_file_the_database_holds_no_token_secret(
    database_url: str, clock, tmp_path: Path, umask: None
) -> None:
    path = tmp_path / "auth.secret"
    settings = Settings(database_url=database_url, auth=AuthSettings(secret_file=str(path)))
    app = bootstrap.build(settings, clock=clock)
    try:
        keys = token_keys(app.settings.auth, app.store, app.clock())
        assert keys.secret == path.read_text().strip() and mode(path) == 0o600
        assert _stored_secret(app) is None
        assert keys.verify(keys.mint("u-1", clock()), clock())["sub"] == "f:learnagg:u-1"
    finally:
        app.close()


def test_sqlite_database_file_is_created_0600_with_its_wal(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: SQLite alone would create the file 0644
    try:
        db = tmp_path / "learnagg.db"
        store = Store(f"sqlite:///{db}")
        schema.upgrade(store)
        with store.write() as conn:
            conn.execute(text("CREATE TABLE probe (x INTEGER)"))
            conn.execute(text("INSERT INTO probe VALUES (1)"))
        assert mode(db) == 0o600
        for suffix in ("-wal", "-shm"):
            side = Path(f"{db}{suffix}")
            if side.exists():
                assert mode(side) == 0o600, suffix
        store.dispose()
    finally:
        os.umask(old)


def test_existing_sqlite_files_keep_their_mode(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    db.touch()
    db.chmod(0o640)
    store = Store(f"sqlite:///{db}")
    schema.upgrade(store)
    store.dispose()
    assert mode(db) == 0o640


def test_in_memory_sqlite_creates_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = Store("sqlite://")
    with store.read() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    store.dispose()
    assert list(tmp_path.iterdir()) == []


def test_cli_token_uses_the_secret_file_and_the_configured_issuer_and_audience(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    secret = tmp_path / "auth.secret"
    monkeypatch.setenv("LEARNAGG_AUTH__SECRET_FILE", str(secret))
    monkeypatch.setenv("LEARNAGG_AUTH__ISSUER", "https://learnagg.example")
    monkeypatch.setenv("LEARNAGG_AUTH__AUDIENCE", "portal")
    assert learnagg("init", url=url).returncode == 0
    result = learnagg("token", "u-7", "--role", "admin", url=url)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), secret.read_text().strip(), algorithms=["HS256"], audience="portal")
    assert claims["sub"].endswith(":u-7") and claims["roles"] == ["PLATFORM_ADMIN"]
    assert claims["iss"] == "https://learnagg.example" and claims["exp"] > claims["iat"]
    assert mode(secret) == 0o600 and mode(tmp_path / "cli.db") == 0o600


def test_cli_token_refuses_an_unsafe_secret_file_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    secret = tmp_path / "auth.secret"
    secret.write_text("s" * 40)
    secret.chmod(0o644)
    monkeypatch.setenv("LEARNAGG_AUTH__SECRET_FILE", str(secret))
    assert learnagg("init", url=url).returncode == 0
    result = learnagg("token", "u-7", url=url)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "chmod 600" in result.stderr and len(result.stderr.strip().splitlines()) == 1
