"""The embedded PostgreSQL: started once, reused, stopped, and recovered after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from dataload.lake import db
from dataload.lake.server import EmbeddedPostgres
from dataload.settings import Settings


@pytest.fixture
def server(isolated_home: Path):
    embedded = EmbeddedPostgres(isolated_home)
    yield embedded
    embedded.stop()


def test_start_is_reused_and_stop_stops(server: EmbeddedPostgres) -> None:
    first = server.start()
    again = server.start()
    assert first.running and again.pid == first.pid and again.port == first.port
    assert server.stop() is True
    assert server.status().running is False
    assert server.stop() is False


async def test_embedded_server_serves_what_the_lake_needs(server: EmbeddedPostgres) -> None:
    status = server.start()
    conn = await asyncpg.connect(status.url(), password=server.password())
    try:
        version = await conn.fetchval("SHOW server_version_num")
        languages = await conn.fetchval(
            "SELECT count(*) FROM pg_language WHERE lanname = 'plpgsql'"
        )
        jsonpath = await conn.fetchval("""SELECT jsonb_path_query_first('{"a":[1,2]}', '$.a[1]')""")
    finally:
        await conn.close()
    assert int(version) >= 180000 and languages == 1 and jsonpath == "2"


def test_a_killed_server_is_detected_and_replaced(server: EmbeddedPostgres) -> None:
    killed = server.start()
    assert killed.pid is not None
    os.kill(killed.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.status().running and time.monotonic() < deadline:
        time.sleep(0.1)
    stale = server.status()
    assert stale.running is False and stale.stale_pid_file is True
    # Orphaned backends exit once they notice the postmaster died; give them a moment.
    time.sleep(1)
    fresh = server.start()
    assert fresh.running and fresh.pid != killed.pid and fresh.port == killed.port


def test_two_processes_starting_at_once_share_one_server(isolated_home: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from dataload.lake.server import EmbeddedPostgres;"
        "print(EmbeddedPostgres(Path(sys.argv[1])).start().pid)"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(isolated_home)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    pids = {proc.communicate(timeout=120)[0].strip() for proc in procs}
    try:
        assert all(proc.returncode == 0 for proc in procs)
        assert len(pids) == 1
    finally:
        EmbeddedPostgres(isolated_home).stop()


async def test_wrong_password_names_the_variable_and_hides_the_secret(
    server: EmbeddedPostgres,
) -> None:
    status = server.start()
    conn = await asyncpg.connect(status.url(), password=server.password())
    try:
        await conn.execute("CREATE ROLE lake_user LOGIN PASSWORD 'right-secret'")
    finally:
        await conn.close()

    settings = Settings(
        _env_file=None,
        POSTGRES_HOST="127.0.0.1",
        POSTGRES_PORT=status.port,
        POSTGRES_USER="lake_user",
        POSTGRES_PASS="wrong-secret",
        POSTGRES_DB="postgres",
    )
    with pytest.raises(db.DatabaseUnavailable) as caught:
        await db.connect(settings)
    message = str(caught.value)
    assert "POSTGRES_PASS" in message and "wrong-secret" not in message


async def test_unreachable_host_names_the_variable() -> None:
    settings = Settings(
        _env_file=None, POSTGRES_HOST="127.0.0.1", POSTGRES_PORT=1, POSTGRES_PASS="s3cret"
    )
    with pytest.raises(db.DatabaseUnavailable) as caught:
        await db.connect(settings)
    assert "POSTGRES_HOST" in str(caught.value) and "s3cret" not in str(caught.value)


async def test_missing_database_names_the_variable(server_settings: Settings) -> None:
    settings = server_settings.model_copy(update={"postgres_db": "no_such_database_here"})
    if settings.uses_embedded_postgres:
        pytest.skip("the embedded server creates its database on demand")
    with pytest.raises(db.DatabaseUnavailable, match="POSTGRES_DB"):
        await db.connect(settings)


async def test_every_login_needs_its_password_and_the_server_is_durable(
    server: EmbeddedPostgres,
) -> None:
    """Before: initdb --auth=trust (anyone local logged in as the superuser, and a consumer with
    any password), and fsync, full_page_writes and synchronous_commit off."""
    status = server.start()
    password = server.password()
    assert password and (server.password_file.stat().st_mode & 0o777) == 0o600
    for user, wrong in (("postgres", None), ("postgres", "wrong"), ("advising", "wrong")):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(status.url(), user=user, password=wrong)
    conn = await asyncpg.connect(status.url(), password=password)
    try:
        await conn.execute("CREATE ROLE advising LOGIN PASSWORD 'right'")
        durability = {
            name: await conn.fetchval(f"SHOW {name}")
            for name in ("fsync", "full_page_writes", "synchronous_commit")
        }
    finally:
        await conn.close()
    consumer = await asyncpg.connect(status.url(), user="advising", password="right")
    await consumer.close()
    assert durability == {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}


async def test_a_server_made_trusting_everyone_gets_passwords_at_its_next_start(
    isolated_home: Path,
) -> None:
    """A server initialised by an older dataload (trust, fsync off) is secured when reused."""
    server = EmbeddedPostgres(isolated_home)
    status = server.start()
    hba = server.data_dir / "pg_hba.conf"
    hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    conf = server.data_dir / "postgresql.conf"
    conf.write_text(conf.read_text() + "fsync = off\nfull_page_writes = off\n")
    server.password_file.unlink()
    server.stop()
    try:
        status = server.start()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(status.url(), password="wrong")
        conn = await asyncpg.connect(status.url(), password=server.password())
        try:
            assert await conn.fetchval("SHOW fsync") == "on"
        finally:
            await conn.close()
    finally:
        server.stop()


async def test_the_fast_mode_is_opt_in_and_said(isolated_home: Path) -> None:
    server = EmbeddedPostgres(isolated_home, unsafe_fast=True)
    status = server.start()
    try:
        conn = await asyncpg.connect(status.url(), password=server.password())
        try:
            assert await conn.fetchval("SHOW fsync") == "off"
        finally:
            await conn.close()
    finally:
        server.stop()
