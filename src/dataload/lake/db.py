"""Connections to the lake's PostgreSQL: the server POSTGRES_* names, or the embedded one.

Connection failures are translated into one `DatabaseUnavailable` whose message names the
setting to check; the password never appears in it.

Two identities: the operator's (POSTGRES_USER, or the embedded server's superuser), who runs
`dataload db init` and the `services` commands, and the loader's, which the flows load as
(`loader=True`). On the embedded server the loader logs in with its own password (kept in
DATALOAD_HOME/pgpass); on another server the flows log in as POSTGRES_USER, which should be the
loader's login (DATALOAD_LOADER_ROLE) and, when it is another role, act as the loader
(`SET ROLE`): the load then has the loader's rights and no more.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import asyncpg

from dataload.lake.server import SUPERUSER, EmbeddedPostgres
from dataload.settings import Settings

if TYPE_CHECKING:
    from dataload.lake.install import DomainTables
    from dataload.lake.setup import LakeSetup

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
    "prepare_lake",
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
    #: A role the session acts as once connected (SET ROLE), or None.
    role: str | None = None

    def where(self) -> str:
        kind = "embedded PostgreSQL" if self.embedded else "PostgreSQL"
        acting = f" as {self.role!r}" if self.role else ""
        return (
            f"{kind} at {self.host}:{self.port}, database {self.database!r}, "
            f"user {self.user!r}{acting}"
        )

    def with_database(self, database: str) -> ConnectParams:
        return replace(self, database=database)

    def server_settings(self) -> dict[str, str]:
        return {"role": self.role} if self.role else {}


def embedded_server(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.home, unsafe_fast=settings.embedded_unsafe_fast)


def connect_params(
    settings: Settings, *, start: bool = True, loader: bool = False
) -> ConnectParams:
    """Where to connect, as the operator or (`loader`) as the loader; starts (or reuses) the
    embedded server when POSTGRES_HOST is unset."""
    if settings.postgres_host:
        user = settings.postgres_user
        return ConnectParams(
            host=settings.postgres_host,
            port=settings.postgres_port,
            user=user,
            password=settings.postgres_pass.get_secret_value() or None,
            database=settings.postgres_db,
            embedded=False,
            role=settings.loader_role if loader and user != settings.loader_role else None,
        )
    server = embedded_server(settings)
    status = server.start() if start else server.status()
    if not status.running or status.port is None:
        raise DatabaseUnavailable(
            "the embedded PostgreSQL is not running: start it with `dataload db start`"
        )
    user = settings.loader_role if loader else SUPERUSER
    password = server.new_password(user) if loader else server.password(user)
    return ConnectParams(
        "127.0.0.1", status.port, user, password, settings.postgres_db, embedded=True
    )


def dsn(settings: Settings, *, database: str | None = None, loader: bool = False) -> str:
    """A libpq URL for the lake (it holds the password: never log it)."""
    params = connect_params(settings, loader=loader)
    auth = quote(params.user, safe="")
    if params.password:
        auth += ":" + quote(params.password, safe="")
    url = f"postgresql://{auth}@{params.host}:{params.port}/{quote(database or params.database, safe='')}"
    if params.role:
        url += "?options=" + quote(f"-c role={params.role}", safe="")
    return url


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
    settings: Settings,
    *,
    database: str | None = None,
    connect_timeout: float = 10.0,
    loader: bool = False,
) -> asyncpg.Connection:
    params = connect_params(settings, loader=loader)
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
            server_settings=params.server_settings(),
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise _translate(exc, params) from None


async def create_pool(
    settings: Settings, *, loader: bool = False, **pool_options: Any
) -> asyncpg.Pool:
    """A connection pool to the lake database (created first when it is the embedded server's),
    as the operator or (`loader`) as the loader."""
    params = connect_params(settings, loader=loader)
    if params.embedded:
        await ensure_database(settings)
    options: dict[str, Any] = {"min_size": 1, "max_size": 16, "timeout": 10.0, **pool_options}
    # A batch's commit is acknowledged only once it is durable, whatever the server's default
    # (the embedded server's fast mode turns it off): the ledger and the run's view of what it
    # stored must not claim a batch a crash then takes back. One WAL flush per batch.
    server_settings = options.setdefault("server_settings", {})
    server_settings.setdefault("synchronous_commit", "on")
    server_settings.update(params.server_settings())
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


def _kept_loader_password(settings: Settings) -> str | None:
    """The loader's password where dataload keeps it (the embedded server's pgpass file),
    generated on first use; None on another server, where an administrator sets it."""
    if settings.postgres_host:
        return None
    return embedded_server(settings).new_password(settings.loader_role)


async def prepare_lake(
    settings: Settings,
    domains: Sequence[DomainTables] = (),
    *,
    loader_password: str | None = None,
) -> LakeSetup:
    """`dataload db init` before a run, on a connection of the operator's: the roles, the
    migrations as the owner, the loader's grants (lake/setup.py). A loader's own login only
    checks that the lake is ready. The loader's password is `loader_password` when given, else
    the one the embedded server keeps."""
    from dataload.lake.roles import LakeRoles
    from dataload.lake.setup import init_lake

    if settings.uses_embedded_postgres:
        await ensure_database(settings)
    conn = await connect(settings)
    try:
        return await init_lake(
            conn,
            domains,
            roles=LakeRoles.of(settings),
            loader_password=loader_password or _kept_loader_password(settings),
        )
    finally:
        await conn.close()
