"""Connections to the lake's PostgreSQL: the server POSTGRES_* names, or the embedded one.

Connection failures are translated into one `DatabaseUnavailable` whose message names the
setting to check; the password never appears in it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg

from dataload.lake.server import EmbeddedPostgres
from dataload.settings import Settings

__all__ = [
    "ConnectParams",
    "DatabaseUnavailable",
    "connect",
    "connect_params",
    "create_pool",
    "drop_database",
    "dsn",
    "embedded_server",
    "ensure_database",
    "recreate_database",
]


class DatabaseUnavailable(RuntimeError):
    """The lake's database cannot be reached or refuses us."""


@dataclass(frozen=True)
class ConnectParams:
    host: str
    port: int
    user: str
    password: str | None
    database: str
    embedded: bool

    def where(self) -> str:
        kind = "embedded PostgreSQL" if self.embedded else "PostgreSQL"
        return f"{kind} at {self.host}:{self.port}, database {self.database!r}, user {self.user!r}"

    def with_database(self, database: str) -> ConnectParams:
        return ConnectParams(
            self.host, self.port, self.user, self.password, database, self.embedded
        )


def embedded_server(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.home)


def connect_params(settings: Settings, *, start: bool = True) -> ConnectParams:
    """Where to connect; starts (or reuses) the embedded server when POSTGRES_HOST is unset."""
    if settings.postgres_host:
        return ConnectParams(
            host=settings.postgres_host,
            port=settings.postgres_port,
            user=settings.postgres_user,
            password=settings.postgres_pass.get_secret_value() or None,
            database=settings.postgres_db,
            embedded=False,
        )
    server = embedded_server(settings)
    status = server.start() if start else server.status()
    if not status.running or status.port is None:
        raise DatabaseUnavailable(
            "the embedded PostgreSQL is not running: start it with `dataload db start`"
        )
    return ConnectParams(
        "127.0.0.1", status.port, "postgres", None, settings.postgres_db, embedded=True
    )


def dsn(settings: Settings, *, database: str | None = None) -> str:
    """A libpq URL for the lake (it holds the password: never log it)."""
    params = connect_params(settings)
    auth = quote(params.user, safe="")
    if params.password:
        auth += ":" + quote(params.password, safe="")
    return f"postgresql://{auth}@{params.host}:{params.port}/{quote(database or params.database, safe='')}"


def _translate(exc: BaseException, params: ConnectParams) -> DatabaseUnavailable:
    where = params.where()
    if params.embedded:
        hint = "check `dataload db status`"
        if isinstance(exc, asyncpg.InvalidCatalogNameError):
            hint = "run `dataload db init`"
    elif isinstance(exc, asyncpg.InvalidPasswordError):
        hint = "check POSTGRES_USER and POSTGRES_PASS"
    elif isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        hint = "check POSTGRES_USER (the role does not exist or may not log in)"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):
        hint = "check POSTGRES_DB (the database does not exist; create it first)"
    elif isinstance(exc, socket.gaierror):
        hint = "check POSTGRES_HOST (the name does not resolve)"
    else:
        hint = "check POSTGRES_HOST and POSTGRES_PORT, and that the server is up"
    reason = type(exc).__name__ if isinstance(exc, TimeoutError) else str(exc).splitlines()[0]
    return DatabaseUnavailable(f"cannot connect to {where}: {reason}; {hint}")


async def connect(
    settings: Settings, *, database: str | None = None, connect_timeout: float = 10.0
) -> asyncpg.Connection:
    params = connect_params(settings)
    if database:
        params = params.with_database(database)
    try:
        return await asyncpg.connect(
            host=params.host,
            port=params.port,
            user=params.user,
            password=params.password,
            database=params.database,
            timeout=connect_timeout,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise _translate(exc, params) from None


async def create_pool(settings: Settings, **pool_options: Any) -> asyncpg.Pool:
    """A connection pool to the lake database (created first when it is the embedded server's)."""
    params = connect_params(settings)
    if params.embedded:
        await ensure_database(settings)
    options: dict[str, Any] = {"min_size": 1, "max_size": 16, "timeout": 10.0, **pool_options}
    # A batch's commit is acknowledged only once it is durable, whatever the server's default
    # (the embedded server's is off): the ledger and the run's view of what it stored must not
    # claim a batch a crash then takes back. One WAL flush per batch of hundreds of records.
    options.setdefault("server_settings", {}).setdefault("synchronous_commit", "on")
    try:
        return await asyncpg.create_pool(
            host=params.host,
            port=params.port,
            user=params.user,
            password=params.password,
            database=params.database,
            **options,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise _translate(exc, params) from None


async def ensure_database(settings: Settings, database: str | None = None) -> bool:
    """Create the database if missing; returns whether it was created."""
    name = database or settings.postgres_db
    conn = await connect(settings, database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        quoted = await conn.fetchval("SELECT quote_ident($1)", name)
        try:
            await conn.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return False  # created by a concurrent process
        return True
    finally:
        await conn.close()


async def drop_database(settings: Settings, database: str | None = None) -> None:
    """Drop the database (closing its sessions) if it exists."""
    conn = await connect(settings, database="postgres")
    try:
        quoted = await conn.fetchval("SELECT quote_ident($1)", database or settings.postgres_db)
        await conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await conn.close()


async def recreate_database(settings: Settings, database: str | None = None) -> None:
    """An empty database in place of the one named (for the demo and tests, never the lake)."""
    await drop_database(settings, database)
    await ensure_database(settings, database)
