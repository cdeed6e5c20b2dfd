"""Lake fixtures: a migrated database per test, cloned from a template migrated once.

Migrating takes a moment; `CREATE DATABASE ... TEMPLATE` copies the result in a fraction of it.
Each test still gets (and drops) a database of its own, on the server `server_settings` names.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from click.testing import Result
from typer.testing import CliRunner

from dataload.cli import app
from dataload.lake import Lake, db, migrate
from dataload.lake.filters import read_services, sync_services
from dataload.settings import Settings, get_settings


async def _admin(settings: Settings, sql: str) -> None:
    conn = await db.connect(settings, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def lake_template(server_settings: Settings) -> AsyncIterator[str]:
    """Name of a database holding the migrated lake and the shipped services."""
    name = f"dataload_lake_template_{uuid.uuid4().hex[:8]}"
    await _admin(server_settings, f'CREATE DATABASE "{name}"')
    try:
        conn = await db.connect(server_settings, database=name)
        try:
            await migrate(conn)
            await sync_services(conn, read_services())
        finally:
            await conn.close()
        yield name
    finally:
        await _admin(server_settings, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def lake_db(server_settings: Settings, lake_template: str) -> AsyncIterator[Settings]:
    """Settings naming a fresh copy of the migrated lake, dropped after the test."""
    name = f"dataload_lake_test_{uuid.uuid4().hex[:12]}"
    await _admin(server_settings, f'CREATE DATABASE "{name}" TEMPLATE "{lake_template}"')
    try:
        yield server_settings.model_copy(update={"postgres_db": name})
    finally:
        await _admin(server_settings, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pool(lake_db: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(lake_db, min_size=1, max_size=6)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as connection:
        yield connection


@pytest.fixture
def lake(pool: asyncpg.Pool) -> Lake:
    return Lake(pool)


@pytest.fixture
def run_cli(lake_db: Settings, monkeypatch: pytest.MonkeyPatch):
    """Run `dataload ...` against this test's database; returns the click Result."""
    params = db.connect_params(lake_db)
    for name, value in {
        "POSTGRES_HOST": params.host,
        "POSTGRES_PORT": str(params.port),
        "POSTGRES_USER": params.user,
        "POSTGRES_PASS": params.password or "",
        "POSTGRES_DB": params.database,
    }.items():
        monkeypatch.setenv(name, value)

    async def run(*args: str) -> Result:
        get_settings.cache_clear()
        try:
            # The command runs its own event loop: give it a thread of its own.
            return await asyncio.to_thread(CliRunner().invoke, app, list(args))
        finally:
            get_settings.cache_clear()

    return run
