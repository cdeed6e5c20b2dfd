"""Migrations: ordered, recorded with checksums, idempotent, refused when inconsistent."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import pytest

from dataload.lake import db, init_lake
from dataload.lake.filters import sync_services
from dataload.lake.migrate import MigrationError, available_migrations, migrate
from dataload.settings import Settings


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return folder


async def test_the_shipped_migrations_apply_in_order_once(lake_settings: Settings, lake_conn):
    applied = await migrate(lake_conn)

    assert applied == [m.label for m in available_migrations()]
    assert await migrate(lake_conn) == []
    recorded = await lake_conn.fetch(
        "SELECT version, checksum FROM lake.schema_migrations ORDER BY version"
    )
    assert [(r["version"], r["checksum"]) for r in recorded] == [
        (m.version, m.checksum) for m in available_migrations()
    ]
    tables = {
        r[0]
        for r in await lake_conn.fetch(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        )
    }
    for d in ("term", "course", "person"):
        assert {
            f"{d}_raw.{d}_data",
            f"{d}_xform.current_{d}_data",
            f"{d}_curated.{d}_data_by_service",
            f"{d}_curated.{d}_schema_service_filters",
            f"{d}_raw.{d}_history",
        } <= tables


def test_duplicate_versions_are_refused(tmp_path):
    folder = write(tmp_path, {"V0001__a.sql": "", "V0001__b.sql": ""})
    with pytest.raises(MigrationError, match="version 1 is also"):
        available_migrations(folder)


def test_missing_versions_are_refused(tmp_path):
    folder = write(tmp_path, {"V0001__a.sql": "", "V0003__c.sql": ""})
    with pytest.raises(MigrationError, match=r"missing \[2\]"):
        available_migrations(folder)


def test_badly_named_files_are_refused(tmp_path):
    folder = write(tmp_path, {"0001_a.sql": ""})
    with pytest.raises(MigrationError, match=r"named V<version>__<what>\.sql"):
        available_migrations(folder)


async def test_a_migration_changed_after_it_was_applied_is_refused(tmp_path, lake_conn):
    folder = write(tmp_path, {"V0001__one.sql": "CREATE TABLE one (x int);"})
    assert await migrate(lake_conn, folder=folder) == ["V0001__one"]
    write(folder, {"V0001__one.sql": "CREATE TABLE one (x bigint);"})

    with pytest.raises(MigrationError, match="V0001__one was changed after it was applied"):
        await migrate(lake_conn, folder=folder)


async def test_a_database_newer_than_the_code_is_refused(tmp_path, lake_conn):
    folder = write(tmp_path, {"V0001__one.sql": "SELECT 1;", "V0002__two.sql": "SELECT 2;"})
    await migrate(lake_conn, folder=folder)
    (folder / "V0002__two.sql").unlink()

    with pytest.raises(MigrationError, match="does not know"):
        await migrate(lake_conn, folder=folder)


async def test_a_failing_migration_is_rolled_back_and_not_recorded(tmp_path, lake_conn):
    folder = write(
        tmp_path,
        {
            "V0001__one.sql": "CREATE TABLE one (x int);",
            "V0002__two.sql": "CREATE TABLE two (x int); SELECT 1/0;",
        },
    )
    with pytest.raises(MigrationError, match="V0002__two failed and was rolled back"):
        await migrate(lake_conn, folder=folder)

    assert await lake_conn.fetchval("SELECT to_regclass('one') IS NOT NULL")
    assert await lake_conn.fetchval("SELECT to_regclass('two') IS NULL")
    assert await lake_conn.fetchval("SELECT max(version) FROM lake.schema_migrations") == 1


async def test_concurrent_migrations_apply_each_version_once(lake_settings: Settings):
    conns = [await db.connect(lake_settings) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
    finally:
        for c in conns:
            await c.close()

    applied = sorted(label for result in results for label in result)
    assert applied == [m.label for m in available_migrations()]


def _cli_env(settings: Settings) -> dict[str, str]:
    params = db.connect_params(settings)
    return {
        **os.environ,
        "POSTGRES_HOST": params.host,
        "POSTGRES_PORT": str(params.port),
        "POSTGRES_USER": params.user,
        "POSTGRES_PASS": params.password or "",
        "POSTGRES_DB": params.database,
    }


async def test_two_concurrent_db_init_commands_both_succeed(lake_settings: Settings):
    env = _cli_env(lake_settings)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dataload.cli",
            "db",
            "init",
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [(await p.communicate())[0].decode() for p in procs]

    assert [p.returncode for p in procs] == [0, 0]
    assert sorted("applied" in out for out in outputs) == [False, True]
    assert sum("added the shipped services" in out for out in outputs) == 1
    conn = await asyncpg.connect(db.dsn(lake_settings))
    try:
        count = await conn.fetchval("SELECT count(*) FROM lake.schema_migrations")
    finally:
        await conn.close()
    assert count == len(available_migrations())


async def test_only_a_new_lake_gets_the_shipped_services(lake_conn):
    created = await init_lake(lake_conn)
    await sync_services(lake_conn, {"course": {}})  # removed on purpose

    again = await init_lake(lake_conn)

    assert {change.domain for change in created.seeded} == {"term", "course", "person"}
    assert again.migrations == [] and again.seeded == []
    assert not await lake_conn.fetchval(
        "SELECT count(*) FROM course_curated.course_schema_service_filters"
    )
