"""Tests for the throwaway PostgreSQL server used by tests and benchmarks."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import psycopg

from learnagg.bench.pg_binaries import find_pg_bindir
from learnagg.bench.pgserver import PostgresServer


def _accepts_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])  # real uid
    raise AssertionError(f"no Uid line for pid {pid}")


def test_find_pg_bindir_has_server_binaries() -> None:
    bindir = find_pg_bindir()
    assert bindir is not None
    assert (bindir / "initdb").is_file()
    assert (bindir / "postgres").is_file()


def test_server_lifecycle() -> None:
    server = PostgresServer()
    started = time.monotonic()
    server.start()
    elapsed = time.monotonic() - started
    try:
        assert elapsed < 30, f"start took {elapsed:.1f} s"
        root = server.root
        assert root is not None and root.is_dir()
        port = server.port
        assert server.url() == f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

        url = server.create_database("lifecycle_db")
        assert url == f"postgresql+psycopg://postgres@127.0.0.1:{port}/lifecycle_db"
        server.create_database("lifecycle_copy", template="lifecycle_db")

        with psycopg.connect(server.conninfo("lifecycle_db")) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
            row = conn.execute(
                "select current_user, pg_encoding_to_char(encoding), current_setting('fsync'),"
                " current_setting('max_connections')"
                " from pg_database where datname = current_database()"
            ).fetchone()
        assert row == ("postgres", "UTF8", "off", "100")

        with psycopg.connect(server.conninfo("lifecycle_copy")) as conn:
            assert conn.execute("select 1").fetchone() == (1,)

        if os.geteuid() == 0:
            assert _process_uid(server.pid) != 0, "postgres must not run as root"
            assert root.stat().st_uid != 0
    finally:
        server.stop()

    assert not root.exists()
    assert not _accepts_connections(port)
    server.stop()  # idempotent


def test_durable_server_keeps_defaults_and_context_manager() -> None:
    with PostgresServer(durable=True) as server:
        root = server.root
        with psycopg.connect(server.conninfo()) as conn:
            settings = conn.execute(
                "select current_setting('fsync'), current_setting('synchronous_commit'),"
                " current_setting('full_page_writes'), current_setting('shared_buffers'),"
                " current_setting('listen_addresses')"
            ).fetchone()
        assert settings == ("on", "on", "on", "128MB", "127.0.0.1")
        port = server.port
    assert root is not None and not root.exists()
    assert not _accepts_connections(port)
