"""Shared fixtures: a real PostgreSQL for every test that needs one.

With POSTGRES_HOST set, tests use that server; otherwise one embedded server is started for the
session in a temporary DATALOAD_HOME and stopped at the end. Each test that asks for
`lake_settings` gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from dataload.lake import db
from dataload.lake.server import EmbeddedPostgres
from dataload.settings import Settings

# Roles are the server's, not a database's: this session's owner and loader have names of their
# own (other test sessions may share the server), set in the environment so that every
# Settings() and subprocess uses them, and are dropped at the end.
_ROLE_SUFFIX = uuid.uuid4().hex[:8]
os.environ["DATALOAD_OWNER_ROLE"] = f"dataload_owner_test_{_ROLE_SUFFIX}"
os.environ["DATALOAD_LOADER_ROLE"] = f"dataload_loader_test_{_ROLE_SUFFIX}"


@pytest.fixture(scope="session", autouse=True)
async def _drop_test_roles() -> AsyncIterator[None]:
    """Drop this session's roles once every test database is gone."""
    yield
    if not os.environ.get("POSTGRES_HOST"):
        return  # each embedded test server, and its roles, went with its folder
    conn = await db.connect(Settings(_env_file=None), database="postgres")
    try:
        for variable in ("DATALOAD_LOADER_ROLE", "DATALOAD_OWNER_ROLE"):
            role = os.environ[variable]
            try:
                await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
            except asyncpg.PostgresError as exc:  # a database left behind still uses it
                print(f"could not drop the test role {role}: {exc}")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def server_settings() -> Iterator[Settings]:
    """Settings naming the test server (POSTGRES_* if set, else a session-wide embedded one)."""
    # Tests never read a developer's .env: they configure what they need explicitly.
    if os.environ.get("POSTGRES_HOST"):
        yield Settings(_env_file=None)
        return
    home = _reachable_temp_dir() / "home"
    server = EmbeddedPostgres(home)
    server.start()
    try:
        yield Settings(_env_file=None, DATALOAD_HOME=home)
    finally:
        server.stop()
        shutil.rmtree(home.parent, ignore_errors=True)


@pytest.fixture
async def lake_settings(server_settings: Settings) -> AsyncIterator[Settings]:
    """Settings pointing at a fresh, empty database of this test's own."""
    name = f"dataload_test_{uuid.uuid4().hex[:12]}"
    settings = server_settings.model_copy(update={"postgres_db": name})
    await db.ensure_database(settings)
    try:
        yield settings
    finally:
        await db.drop_database(settings)


@pytest.fixture
async def lake_conn(lake_settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await db.connect(lake_settings)
    try:
        yield conn
    finally:
        await conn.close()


def _reachable_temp_dir() -> Path:
    # As root the embedded server runs as an unprivileged user, who must be able to reach its
    # home; pytest's own temporary folders are private to root.
    path = Path(tempfile.mkdtemp(prefix="dataload-test-"))
    path.chmod(0o755)
    return path


@pytest.fixture
def isolated_home() -> Iterator[Path]:
    """A DATALOAD_HOME of this test's own, for tests of the embedded server itself."""
    path = _reachable_temp_dir()
    yield path / "home"
    shutil.rmtree(path, ignore_errors=True)
