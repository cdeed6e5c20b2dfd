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
from dataload.lake.migrate import (
    MigrationError,
    available_migrations,
    available_repeatables,
    migrate,
)
from dataload.settings import Settings


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return folder


def shipped_labels() -> list[str]:
    """What a new database gets: the versioned migrations, then the repeatable scripts."""
    return [m.label for m in available_migrations()] + [r.label for r in available_repeatables()]


async def test_the_shipped_migrations_apply_in_order_once(lake_settings: Settings, lake_conn):
    applied = await migrate(lake_conn)

    assert applied == shipped_labels()
    assert await migrate(lake_conn) == []
    recorded = await lake_conn.fetch(
        "SELECT version, checksum FROM lake.schema_migrations ORDER BY version"
    )
    assert [(r["version"], r["checksum"]) for r in recorded] == [
        (m.version, m.checksum) for m in available_migrations()
    ]
    scripts = await lake_conn.fetch("SELECT name, checksum FROM lake.repeatable_scripts")
    assert sorted((r["name"], r["checksum"]) for r in scripts) == [
        (r.name, r.checksum) for r in available_repeatables()
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
    assert applied == sorted(shipped_labels())


# Repeatable scripts ---------------------------------------------------------------------------

# A versioned table, and a repeatable script that defines a function on it and notes each time
# it runs (so that a test sees whether it was applied again).
_TABLE = "CREATE TABLE runs_of (script text);"


def _script(name: str, result: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS text LANGUAGE sql RETURN {result};\n"
        f"INSERT INTO runs_of VALUES ('{name}');\n"
    )


async def _runs_of(conn: asyncpg.Connection) -> list[str]:
    return [r[0] for r in await conn.fetch("SELECT script FROM runs_of")]


async def test_a_new_repeatable_script_is_applied_after_the_versioned_migrations(
    tmp_path, lake_conn
):
    # R__a runs first, although V0002 comes later in file-name order; R__b uses R__a's function,
    # which exists by then (repeatable scripts run in name order).
    folder = write(
        tmp_path,
        {
            "V0001__one.sql": _TABLE,
            "R__b.sql": "CREATE OR REPLACE FUNCTION b() RETURNS text LANGUAGE sql RETURN a();",
            "R__a.sql": _script("a", "'first'"),
            "V0002__two.sql": "INSERT INTO runs_of VALUES ('V0002');",
        },
    )

    assert await migrate(lake_conn, folder=folder) == ["V0001__one", "V0002__two", "R__a", "R__b"]

    assert await lake_conn.fetchval("SELECT b()") == "first"
    assert await _runs_of(lake_conn) == ["V0002", "a"]
    recorded = await lake_conn.fetch("SELECT name, checksum FROM lake.repeatable_scripts")
    assert sorted((r["name"], r["checksum"]) for r in recorded) == [
        (r.name, r.checksum) for r in available_repeatables(folder)
    ]


async def test_an_unchanged_repeatable_script_is_not_applied_again(tmp_path, lake_conn):
    folder = write(tmp_path, {"V0001__one.sql": _TABLE, "R__a.sql": _script("a", "'first'")})
    await migrate(lake_conn, folder=folder)

    assert await migrate(lake_conn, folder=folder) == []
    assert await _runs_of(lake_conn) == ["a"]


async def test_a_changed_repeatable_script_is_applied_again(tmp_path, lake_conn):
    folder = write(
        tmp_path,
        {
            "V0001__one.sql": _TABLE,
            "R__a.sql": _script("a", "'first'"),
            "R__b.sql": _script("b", "'kept'"),
        },
    )
    await migrate(lake_conn, folder=folder)
    before = await lake_conn.fetchval(
        "SELECT applied_at FROM lake.repeatable_scripts WHERE name = 'a'"
    )
    write(folder, {"R__a.sql": _script("a", "'second'"), "V0002__two.sql": "SELECT 2;"})

    assert await migrate(lake_conn, folder=folder) == ["V0002__two", "R__a"]
    assert await lake_conn.fetchval("SELECT a()") == "second"
    assert await _runs_of(lake_conn) == ["a", "b", "a"]
    row = await lake_conn.fetchrow(
        "SELECT checksum, applied_at FROM lake.repeatable_scripts WHERE name = 'a'"
    )
    assert (
        row["checksum"] == next(r for r in available_repeatables(folder) if r.name == "a").checksum
    )
    assert row["applied_at"] > before


async def test_a_failing_repeatable_script_is_rolled_back_and_not_recorded(tmp_path, lake_conn):
    folder = write(tmp_path, {"V0001__one.sql": _TABLE, "R__a.sql": _script("a", "'first'")})
    await migrate(lake_conn, folder=folder)
    write(
        folder,
        {
            "R__a.sql": _script("a", "'second'") + "SELECT 1/0;",
            "R__b.sql": _script("b", "'never'"),
        },
    )

    with pytest.raises(MigrationError, match=r"repeatable script R__a failed and was rolled back"):
        await migrate(lake_conn, folder=folder)

    # The function as it was, its old checksum, nothing of the scripts after it.
    assert await lake_conn.fetchval("SELECT a()") == "first"
    assert await _runs_of(lake_conn) == ["a"]
    assert await lake_conn.fetchval("SELECT to_regprocedure('b()') IS NULL")
    recorded = {
        r["name"]: r["checksum"]
        for r in await lake_conn.fetch("SELECT name, checksum FROM lake.repeatable_scripts")
    }
    assert list(recorded) == ["a"]
    assert recorded["a"] != available_repeatables(folder)[0].checksum

    write(folder, {"R__a.sql": _script("a", "'second'")})
    assert await migrate(lake_conn, folder=folder) == ["R__a", "R__b"]


async def test_a_repeatable_script_whose_file_is_gone_is_left_alone(tmp_path, lake_conn):
    folder = write(
        tmp_path,
        {
            "V0001__one.sql": _TABLE,
            "R__a.sql": _script("a", "'a'"),
            "R__b.sql": _script("b", "'b'"),
        },
    )
    await migrate(lake_conn, folder=folder)
    # b merged into a: its function is defined in R__a from now on.
    (folder / "R__b.sql").unlink()
    write(folder, {"R__a.sql": _script("a", "'a'") + _script("b", "'b, merged'")})

    assert await migrate(lake_conn, folder=folder) == ["R__a"]
    assert await lake_conn.fetchval("SELECT b()") == "b, merged"
    assert await lake_conn.fetchval("SELECT count(*) FROM lake.repeatable_scripts") == 2

    write(folder, {"R__a.sql": _script("a", "'a'")})  # b no longer in any file: still not dropped
    assert await migrate(lake_conn, folder=folder) == ["R__a"]
    assert await lake_conn.fetchval("SELECT b()") == "b, merged"


@pytest.mark.parametrize("name", ["R__Upper.sql", "R_one_underscore.sql", "R__.sql", "R__a-b.sql"])
def test_badly_named_repeatable_scripts_are_refused(tmp_path, name):
    folder = write(tmp_path, {"V0001__one.sql": "", name: ""})
    with pytest.raises(MigrationError, match=r"or R__<what>\.sql"):
        available_repeatables(folder)
    with pytest.raises(MigrationError, match=r"or R__<what>\.sql"):
        available_migrations(folder)


async def test_concurrent_migrations_apply_each_changed_script_once(
    tmp_path, lake_settings: Settings
):
    folder = write(tmp_path, {"V0001__one.sql": _TABLE, "R__a.sql": _script("a", "'first'")})
    conns = [await db.connect(lake_settings) for _ in range(3)]
    try:
        await migrate(conns[0], folder=folder)
        write(folder, {"R__a.sql": _script("a", "'second'"), "R__b.sql": _script("b", "'b'")})
        results = await asyncio.gather(*(migrate(c, folder=folder) for c in conns))
        runs = await _runs_of(conns[0])
    finally:
        for c in conns:
            await c.close()

    assert sorted(label for result in results for label in result) == ["R__a", "R__b"]
    assert sorted(result != [] for result in results) == [False, False, True]
    assert runs == ["a", "a", "b"]


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
