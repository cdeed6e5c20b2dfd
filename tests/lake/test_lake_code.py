"""The lake's code: every function of schema lake has one current definition, in one R__ file,
and a database gets the same code whichever way it was migrated.

Functions (trigger functions included) and views of schema lake live in the repeatable scripts
(`lake/sql/R__*.sql`), one `CREATE OR REPLACE` each; the versioned migrations keep the history
of their earlier bodies. The walkers lake.compile_walker generates (lake.walk_*) are data.
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from pathlib import Path

import asyncpg
import pytest

from dataload.lake.migrate import (
    MigrationError,
    available_migrations,
    available_repeatables,
    migrate,
)

from .definitions import lake_code, lake_functions

SQL = Path(__file__).parents[2] / "src" / "dataload" / "lake" / "sql"
# The last versioned migration written before the repeatable scripts: it, and those before it,
# create functions themselves.
_BEFORE_REPEATABLES = 15
_DEFINITION = re.compile(
    r"^CREATE\s+(?P<replace>OR\s+REPLACE\s+)?(?P<kind>FUNCTION|PROCEDURE|VIEW)\s+lake\.(?P<name>\w+)",
    re.IGNORECASE | re.MULTILINE,
)


def _defined_in_scripts() -> dict[str, list[str]]:
    """lake.<name> -> the R__ files that define it, once per definition."""
    where: dict[str, list[str]] = defaultdict(list)
    for script in available_repeatables():
        for match in _DEFINITION.finditer(script.sql):
            where[match["name"]].append(script.label)
    return where


def _copy(names: list[str], folder: Path) -> Path:
    folder.mkdir()
    for name in names:
        shutil.copy(SQL / name, folder)
    return folder


async def _migrate_skipping_failures(conn: asyncpg.Connection, folder: Path) -> None:
    """Migrate; a repeatable script that cannot apply to this older schema (it needs a table a
    later migration makes) is left out, as it did not exist when the schema was that old."""
    while True:
        try:
            await migrate(conn, folder=folder)
            return
        except MigrationError as exc:
            failed = re.match(r"repeatable script (R__\w+) failed", str(exc))
            if not failed:
                raise
            (folder / f"{failed[1]}.sql").unlink()


async def test_every_lake_function_has_one_definition_in_one_repeatable_script(conn):
    where = _defined_in_scripts()
    in_database = await conn.fetch(
        r"""SELECT p.proname, count(*) AS overloads FROM pg_proc AS p
            WHERE p.pronamespace = 'lake'::regnamespace AND p.proname !~ '^(walk|raw_row)_'
            GROUP BY p.proname
            UNION ALL
            SELECT c.relname, 1 FROM pg_class AS c
            WHERE c.relnamespace = 'lake'::regnamespace AND c.relkind IN ('v', 'm')"""
    )

    assert in_database
    missing = sorted(r["proname"] for r in in_database if r["proname"] not in where)
    assert not missing, f"lake functions or views defined in no R__ file: {missing}"
    repeated = {name: files for name, files in where.items() if len(files) > 1}
    assert not repeated, f"defined more than once in the R__ files: {repeated}"
    overloaded = sorted(r["proname"] for r in in_database if r["overloads"] > 1)
    assert not overloaded, f"lake functions with more than one signature: {overloaded}"
    gone = sorted(set(where) - {r["proname"] for r in in_database})
    assert not gone, f"defined in an R__ file but not in the database: {gone}"


def test_repeatable_scripts_only_create_or_replace():
    # A plain CREATE fails the second time a script is applied.
    plain = [
        f"{script.label}: lake.{match['name']}"
        for script in available_repeatables()
        for match in _DEFINITION.finditer(script.sql)
        if not match["replace"]
    ]
    assert not plain, f"use CREATE OR REPLACE in repeatable scripts: {plain}"


async def _code_after_upgrade(conn: asyncpg.Connection, folder: Path) -> dict:
    """The code of a lake migrated by the files of `folder`, then by this release's."""
    await _migrate_skipping_failures(conn, folder)
    await migrate(conn)
    code = await lake_code(conn)
    code.pop("walker")  # data, made from the services a lake has
    return code


async def _new_lake_code(conn: asyncpg.Connection) -> dict:
    code = await lake_code(conn)
    code.pop("walker")
    return code


async def test_a_lake_made_by_the_versioned_migrations_alone_upgrades_to_the_code_of_a_new_one(
    tmp_path, conn, lake_conn
):
    # The lakes made before the repeatable scripts: their code is the V files' last bodies.
    versioned = [f"{m.label}.sql" for m in available_migrations()]
    upgraded = await _code_after_upgrade(lake_conn, _copy(versioned, tmp_path / "old"))

    assert upgraded == await _new_lake_code(conn)


async def test_a_lake_of_the_previous_release_upgrades_to_the_code_of_a_new_one(
    tmp_path, conn, lake_conn
):
    """A lake with all but the latest versioned migration, and the repeatable scripts, gets the
    latest migration and holds what a new lake holds. Fails when that migration drops a function
    of a repeatable script (to change a table whose row type pins it) and neither creates it
    again nor lets its script apply again (lake/migrate.py says how)."""
    latest = available_migrations()[-1]
    if latest.version <= _BEFORE_REPEATABLES:
        pytest.skip(f"{latest.label} was written before the repeatable scripts")
    previous = [f"{m.label}.sql" for m in available_migrations()[:-1]]
    scripts = [f"{r.label}.sql" for r in available_repeatables()]
    upgraded = await _code_after_upgrade(lake_conn, _copy(previous + scripts, tmp_path / "old"))

    assert upgraded == await _new_lake_code(conn)


async def test_the_repeatable_scripts_create_the_lake_code_in_name_order(conn):
    """Applied again, the scripts change nothing; and from nothing (every lake function
    dropped), applied in name order, they create every function as it is: a script only needs
    functions of the scripts before it, or of its own lines above."""
    functions = await lake_functions(conn)
    scripts = available_repeatables()
    transaction = conn.transaction()  # rolled back: the test's database stays as it was
    await transaction.start()
    try:
        for script in scripts:
            await conn.execute(script.sql)
        assert await lake_functions(conn) == functions

        dropped = await conn.fetchval(
            r"""SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc AS p
                WHERE p.pronamespace = 'lake'::regnamespace AND p.proname !~ '^(walk|raw_row)_'"""
        )
        await conn.execute(f"DROP FUNCTION {dropped} CASCADE")
        assert await lake_functions(conn) == {}
        for script in scripts:
            await conn.execute(script.sql)
        assert await lake_functions(conn) == functions
    finally:
        await transaction.rollback()
