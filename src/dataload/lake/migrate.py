"""Schema migrations: versioned SQL files applied once, in order; repeatable scripts re-applied
whenever they change. Each file is applied in its own transaction.

Files live in `lake/sql/`, one concern per file, in two kinds:

* Versioned migrations, `V<version>__<what>.sql` (`V0001__lake_schema.sql`): tables, columns,
  constraints, indexes, data. Versions must run 1, 2, 3, ... without gaps or duplicates. Each
  applied migration is recorded in `lake.schema_migrations` with a checksum of its file; a
  recorded migration whose file has since changed, or that no longer exists, stops
  everything: the database and the code disagree and a person must decide. A versioned file is
  never edited once it is applied somewhere: a change of a table goes in the next version.
* Repeatable scripts, `R__<what>.sql` (`R__runs.sql`): the code of schema lake, its functions
  (trigger functions included) and views, each with its one current definition
  (`CREATE OR REPLACE FUNCTION ...`) in exactly one script. After the pending versioned
  migrations, every script that is new or whose checksum differs from the one recorded in
  `lake.repeatable_scripts` is applied, in name order; the others are not re-run. To change a
  function, edit its body where it stands in its R__ file: the next `dataload db init` applies
  that file again. A script recorded whose file is gone (merged into another) is not an error,
  and nothing is dropped for it: a function that is no longer wanted is dropped by a versioned
  migration.

The versioned migrations of a new database run before any repeatable script: one that calls a
function (V0007 calls lake.install_domain) gets the body the versioned files before it defined,
not the R__ one, so a versioned migration must not rely on an R__ body. `CREATE OR REPLACE`
cannot change a function's arguments or result type, nor drop one: such a change is a versioned
migration that drops the old function, and the changed R__ file creates the new one. A
versioned migration that drops a function to alter a table (a SQL-standard body, `RETURN ...`,
pins the row type of its arguments: lake.describe_outcome pins lake.runs) also deletes its
script's row, `DELETE FROM lake.repeatable_scripts WHERE name = 'runs'`, so that the unchanged
script is applied again and creates the function anew (V0012 and V0015, written before the
scripts, created it again themselves). tests/lake/test_lake_code.py fails otherwise.

Concurrent runs (two `dataload db init`, a flow starting while another initialises) are
serialised by a session advisory lock: the second waits, then finds nothing left to do.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

__all__ = [
    "Migration",
    "MigrationError",
    "Repeatable",
    "applied_migrations",
    "applied_repeatables",
    "available_migrations",
    "available_repeatables",
    "migrate",
    "migration_lock",
    "pending",
]

# Any constant of our own; pg_advisory_lock takes a bigint.
_LOCK_KEY = 0x64_61_74_61_6C_6F_61_64  # "dataload"
_FILE_NAME = re.compile(r"^V(?P<version>\d+)__(?P<name>[a-z0-9_]+)\.sql$")
_REPEATABLE_NAME = re.compile(r"^R__(?P<name>[a-z0-9_]+)\.sql$")
_LEDGER = """
CREATE SCHEMA IF NOT EXISTS lake;
CREATE TABLE IF NOT EXISTS lake.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS lake.repeatable_scripts (
    name       text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""


class MigrationError(RuntimeError):
    """The migration files, or the database's record of them, are not in a state to apply."""


def _checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def label(self) -> str:
        return f"V{self.version:04d}__{self.name}"

    @property
    def checksum(self) -> str:
        return _checksum(self.sql)


@dataclass(frozen=True)
class Repeatable:
    name: str
    sql: str

    @property
    def label(self) -> str:
        return f"R__{self.name}"

    @property
    def checksum(self) -> str:
        return _checksum(self.sql)


def _folder(folder: Path | None) -> Path:
    return folder or Path(str(resources.files("dataload.lake") / "sql"))


def _sql_files(root: Path) -> list[Path]:
    """The .sql files of the folder, in name order; refuses any not named as either kind."""
    paths = sorted(root.glob("*.sql"))
    for path in paths:
        if not (_FILE_NAME.match(path.name) or _REPEATABLE_NAME.match(path.name)):
            raise MigrationError(
                f"{path}: migration files are named V<version>__<what>.sql (versioned) or "
                "R__<what>.sql (repeatable), <what> in lower case, digits and _; rename it"
            )
    return paths


def available_migrations(folder: Path | None = None) -> list[Migration]:
    """The versioned migration files in version order; refuses bad names, duplicates and gaps."""
    root = _folder(folder)
    found: dict[int, Migration] = {}
    for path in _sql_files(root):
        match = _FILE_NAME.match(path.name)
        if not match:
            continue
        version = int(match["version"])
        if version in found:
            raise MigrationError(
                f"{path.name}: version {version} is also {found[version].label}.sql; "
                "give one of them the next free version"
            )
        found[version] = Migration(version, match["name"], path.read_text(encoding="utf-8"))
    expected = list(range(1, len(found) + 1))
    if sorted(found) != expected:
        missing = sorted(set(expected) - set(found))
        raise MigrationError(
            f"{root}: migration versions must run 1..{len(found)} without gaps; missing {missing}"
        )
    return [found[v] for v in expected]


def available_repeatables(folder: Path | None = None) -> list[Repeatable]:
    """The repeatable scripts in name order (the order they are applied in)."""
    return [
        Repeatable(match["name"], path.read_text(encoding="utf-8"))
        for path in _sql_files(_folder(folder))
        if (match := _REPEATABLE_NAME.match(path.name))
    ]


async def applied_migrations(conn: asyncpg.Connection) -> dict[int, tuple[str, str]]:
    """version -> (name, checksum) of the migrations recorded in the database."""
    exists = await conn.fetchval("SELECT to_regclass('lake.schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, name, checksum FROM lake.schema_migrations")
    return {r["version"]: (r["name"], r["checksum"]) for r in rows}


async def applied_repeatables(conn: asyncpg.Connection) -> dict[str, str]:
    """name -> checksum of the repeatable scripts as last applied to the database."""
    exists = await conn.fetchval("SELECT to_regclass('lake.repeatable_scripts') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT name, checksum FROM lake.repeatable_scripts")
    return {r["name"]: r["checksum"] for r in rows}


def _check_history(applied: dict[int, tuple[str, str]], files: list[Migration]) -> None:
    by_version = {m.version: m for m in files}
    for version, (name, checksum) in sorted(applied.items()):
        migration = by_version.get(version)
        label = f"V{version:04d}__{name}"
        if migration is None:
            raise MigrationError(
                f"the database has migration {label}, which this version of dataload does not "
                "know; upgrade dataload or use a database that matches it"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {label} was changed after it was applied to this database; "
                "restore the file and put the change in a new migration"
            )


async def _apply(conn: asyncpg.Connection, what: str, sql: str, record: str, *args) -> None:
    """Run one file and record it, in one transaction; a failure rolls both back."""
    async with conn.transaction():
        try:
            await conn.execute(sql)
        except asyncpg.PostgresError as exc:
            raise MigrationError(f"{what} failed and was rolled back: {exc}") from exc
        await conn.execute(record, *args)


@asynccontextmanager
async def migration_lock(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """The lake's one migrator: held by migrate(), and by whoever changes the lake around a
    migration (`dataload db init`). A session may take it again while it holds it."""
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def _todo(
    conn: asyncpg.Connection, folder: Path | None
) -> tuple[list[Migration], list[Repeatable]]:
    """The migrations not applied yet, and the repeatable scripts new or changed since."""
    applied = await applied_migrations(conn)
    recorded = await applied_repeatables(conn)
    return (
        [m for m in available_migrations(folder) if m.version not in applied],
        [s for s in available_repeatables(folder) if recorded.get(s.name) != s.checksum],
    )


async def pending(conn: asyncpg.Connection, *, folder: Path | None = None) -> list[str]:
    """The labels of what migrate() would apply now."""
    migrations, scripts = await _todo(conn, folder)
    return [m.label for m in migrations] + [s.label for s in scripts]


async def migrate(conn: asyncpg.Connection, *, folder: Path | None = None) -> list[str]:
    """Apply pending migrations, then new or changed repeatable scripts, under an advisory lock;
    returns the labels applied, in order (`V0016__...`, then `R__...`)."""
    applied_now: list[str] = []
    async with migration_lock(conn):
        await conn.execute(_LEDGER)
        _check_history(await applied_migrations(conn), available_migrations(folder))
        migrations, _ = await _todo(conn, folder)
        for migration in migrations:
            await _apply(
                conn,
                f"migration {migration.label}",
                migration.sql,
                "INSERT INTO lake.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration.label)
        _, scripts = await _todo(conn, folder)  # a migration may ask a script to run again
        for script in scripts:
            await _apply(
                conn,
                f"repeatable script {script.label}",
                script.sql,
                "INSERT INTO lake.repeatable_scripts (name, checksum) VALUES ($1, $2)"
                " ON CONFLICT (name) DO UPDATE"
                " SET checksum = excluded.checksum, applied_at = clock_timestamp()",
                script.name,
                script.checksum,
            )
            applied_now.append(script.label)
        if applied_now and await conn.fetchval(
            "SELECT to_regprocedure('lake.protect_raw(text)') IS NOT NULL"
        ):
            # Compiled code follows the scripts it is compiled from: raw's row triggers.
            await conn.execute("SELECT lake.protect_raw(domain) FROM lake.domains ORDER BY domain")
    return applied_now
