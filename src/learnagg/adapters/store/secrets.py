"""Secrets the service generates once: kept in its own database (`app_secret`), or in a file only the service's
user may read (docs/threat-model.md)."""

from __future__ import annotations

import os
import secrets
import stat
import time
from pathlib import Path

from sqlalchemy import select

from learnagg.adapters.store.store import Store
from learnagg.adapters.store.tables import app_secret
from learnagg.errors import ConfigurationError

# An HS256 key shorter than this can be brute-forced from any token it signed.
MIN_FILE_SECRET_CHARS = 32
# How long to wait for another process that is writing the secret file it has just created.
_CONCURRENT_WRITE_SECONDS = 2.0


def get_or_create(store: Store, name: str, now: int) -> str:
    """The secret called ``name``; the first caller creates it (concurrent creators agree on one value)."""
    with store.read() as conn:
        value = conn.execute(select(app_secret.c.value).where(app_secret.c.name == name)).scalar_one_or_none()
    if value is not None:
        return value
    with store.write() as conn:
        conn.execute(
            store.dialect.upsert(app_secret),
            {"name": name, "value": secrets.token_urlsafe(48), "created_on": now},
        )
        return conn.execute(select(app_secret.c.value).where(app_secret.c.name == name)).scalar_one()


def _read_private(path: Path) -> str:
    """The secret in an existing file, refusing a file that other users may read or write."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the secret file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigurationError(f"the secret file {path} is not a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o007:
        raise ConfigurationError(
            f"the secret file {path} is accessible to other users (mode {mode:04o}): run 'chmod 600 {path}'"
        )
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the secret file {path}: {exc}") from None


def _create_private(path: Path) -> bool:
    """Create ``path`` with mode 0600 holding a new secret; False when it already exists."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_EXCL: never reuse (or follow a link to) a file someone else created; 0600 whatever the umask grants.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise ConfigurationError(f"cannot create the secret file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_urlsafe(48) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return True


def file_secret(path_text: str) -> str:
    """The secret kept in the file ``path_text``, created (mode 0600) with a new random value when missing.

    Raises:
        ConfigurationError: the file cannot be created or read, is accessible to other users, or holds fewer than
            ``MIN_FILE_SECRET_CHARS`` characters.
    """
    path = Path(path_text).expanduser()
    _create_private(path)
    deadline = time.monotonic() + _CONCURRENT_WRITE_SECONDS
    value = _read_private(path)
    while not value and time.monotonic() < deadline:
        time.sleep(0.05)  # created an instant ago by a concurrent process that is still writing it
        value = _read_private(path)
    if len(value) < MIN_FILE_SECRET_CHARS:
        raise ConfigurationError(f"the secret file {path} must hold at least {MIN_FILE_SECRET_CHARS} characters")
    return value


def embedded_secret(store: Store, name: str, secret_file: str, now: int) -> str:
    """The secret called ``name``: from ``secret_file`` when one is configured, else from the database."""
    return file_secret(secret_file) if secret_file else get_or_create(store, name, now)
