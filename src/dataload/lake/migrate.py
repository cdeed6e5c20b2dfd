"""Schema migrations: versioned SQL files applied in order, each in its own transaction.

Files live in `lake/sql/` and are named `V<version>__<what>.sql` (`V0001__lake_schema.sql`),
one concern per file. Versions must run 1, 2, 3, ... without gaps or duplicates. Each applied
migration is recorded in `lake.schema_migrations` with a checksum of its file; a recorded
migration whose file has since changed, or that no longer exists, stops everything: the
database and the code disagree and a person must decide.

Concurrent runs (two `dataload db init`, a flow starting while another initialises) are
serialised by a session advisory lock: the second waits, then finds nothing left to do.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

__all__ = ["Migration", "MigrationError", "applied_migrations", "available_migrations", "migrate"]

# Any constant of our own; pg_advisory_lock takes a bigint.
_LOCK_KEY = 0x64_61_74_61_6C_6F_61_64  # "dataload"
_FILE_NAME = re.compile(r"^V(?P<version>\d+)__(?P<name>[a-z0-9_]+)\.sql$")
_LEDGER = """
CREATE SCHEMA IF NOT EXISTS lake;
CREATE TABLE IF NOT EXISTS lake.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""


class MigrationError(RuntimeError):
    """The migration files, or the database's record of them, are not in a state to apply."""


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
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations(folder: Path | None = None) -> list[Migration]:
    """The migration files in version order; refuses bad names, duplicates and gaps."""
    root = folder or Path(str(resources.files("dataload.lake") / "sql"))
    found: dict[int, Migration] = {}
    for path in sorted(root.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(
                f"{path}: migration files are named V<version>__<what>.sql "
                "(lower case, digits and _), rename it"
            )
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


async def applied_migrations(conn: asyncpg.Connection) -> dict[int, tuple[str, str]]:
    """version -> (name, checksum) of the migrations recorded in the database."""
    exists = await conn.fetchval("SELECT to_regclass('lake.schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, name, checksum FROM lake.schema_migrations")
    return {r["version"]: (r["name"], r["checksum"]) for r in rows}


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


async def migrate(conn: asyncpg.Connection, *, folder: Path | None = None) -> list[str]:
    """Apply pending migrations under an advisory lock; returns the labels applied, in order."""
    files = available_migrations(folder)
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_LEDGER)
        applied = await applied_migrations(conn)
        _check_history(applied, files)
        for migration in files:
            if migration.version in applied:
                continue
            async with conn.transaction():
                try:
                    await conn.execute(migration.sql)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(
                        f"migration {migration.label} failed and was rolled back: {exc}"
                    ) from exc
                await conn.execute(
                    "INSERT INTO lake.schema_migrations (version, name, checksum)"
                    " VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(migration.label)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
