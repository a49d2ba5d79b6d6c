"""Finding the PostgreSQL server binaries (``initdb``, ``postgres``) for the throwaway test servers."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """PostgreSQL server binaries or the ``postgres`` OS user are not available."""


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<N>`` folders (numeric, highest last)."""
    parts = re.findall(r"\d+", path.name)
    return tuple(int(p) for p in parts) if parts else (-1,)


def _is_server_bindir(path: Path) -> bool:
    """Return whether ``path`` holds executable ``initdb`` and ``postgres`` binaries."""
    return all(os.access(path / name, os.X_OK) and (path / name).is_file() for name in ("initdb", "postgres"))


def _candidate_bindirs() -> Iterator[Path]:
    """Yield folders that may hold the PostgreSQL server binaries, best first."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version_key(p.parent))
    yield from reversed(debian)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                yield Path(out)
    for name in ("postgres", "initdb"):
        found = shutil.which(name)
        if found:
            yield Path(found).resolve().parent


def find_pg_bindir() -> Path | None:
    """Find the folder with the PostgreSQL server binaries (``initdb``, ``postgres``).

    Looks at ``/usr/lib/postgresql/<N>/bin`` (highest major version first), then at
    ``pg_config --bindir``, then at ``PATH``.

    Returns:
        The folder, or ``None`` when no server binaries are installed.
    """
    for candidate in _candidate_bindirs():
        if _is_server_bindir(candidate):
            return candidate
    return None
