"""`dataload db init` as a function: what a flow runs before it loads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg

from dataload.lake.filters import ServiceChange, seed_services
from dataload.lake.install import DomainTables, install_domains
from dataload.lake.migrate import migrate, migration_lock, pending
from dataload.lake.roles import LakeRoles, acting_as, adopt_lake, can_manage, ensure_roles

__all__ = ["LakeNotReady", "LakeSetup", "init_lake"]


class LakeNotReady(RuntimeError):
    """The lake needs `dataload db init` by an administrator before this session can load."""


@dataclass(frozen=True)
class LakeSetup:
    migrations: list[str]  # labels of the migrations applied now
    seeded: list[ServiceChange]  # shipped services given to a lake created now
    installed: list[str] = field(default_factory=list)  # declared domains installed now
    roles: list[str] = field(default_factory=list)  # what was done to the roles now
    adopted: int = 0  # objects given to the owner now


async def init_lake(
    conn: asyncpg.Connection,
    domains: Iterable[DomainTables] = (),
    *,
    roles: LakeRoles | None = None,
    loader_password: str | None = None,
) -> LakeSetup:
    """Apply pending migrations and secure the curated layer; a new lake gets the shipped
    services; declared `domains` the lake does not have yet are installed, with their services.

    With `roles`, the lake's owner and loader are created if missing (the loader's password set
    when given), every object of the lake is given to the owner, all the above is done as the
    owner, and the loader is granted what a load needs (R__roles.sql). A session that may not
    act as the owner (the loader's own login) changes nothing: it checks that the lake is up to
    date, and raises LakeNotReady saying what is missing otherwise.

    Only a new lake is seeded: a domain whose services were all removed on purpose (with
    `dataload services sync`) must not get them back at the next run.
    """
    domains = list(domains)
    if roles is None:
        return await _setup(conn, domains)
    if not await can_manage(conn, roles):
        await _check_ready(conn, domains, roles)
        return LakeSetup([], [])
    # One init at a time (two runs starting together): concurrent GRANTs on the same objects
    # fail with "tuple concurrently updated". migrate() takes the lock again, which a session
    # may.
    async with migration_lock(conn):
        done = await ensure_roles(conn, roles, loader_password=loader_password)
        adopted = await adopt_lake(conn, roles.owner)
        async with acting_as(conn, roles.owner):
            setup = await _setup(conn, domains)
            # Grants follow what changed. Granted again on every run, they rewrote the ACL of
            # every lake function while another run's load could be creating functions (a
            # domain's walker): "tuple concurrently updated" failed the second of two runs
            # started together (test_chaos, once in a CI run) instead of its clear refusal.
            if done or adopted or setup.migrations or setup.installed:
                await conn.execute("SELECT lake.grant_loader($1, $2)", roles.owner, roles.loader)
    return LakeSetup(setup.migrations, setup.seeded, setup.installed, done, adopted)


async def _setup(conn: asyncpg.Connection, domains: list[DomainTables]) -> LakeSetup:
    applied = await migrate(conn)
    # Every domain's curated tables under row-level security, including domains installed
    # after the migration that introduced it; a no-op (no lock taken) when already in place
    # (and for tabular domains, whose services are views granted one by one).
    await conn.execute("SELECT lake.secure_curated(domain) FROM lake.domains ORDER BY domain")
    created = bool(applied) and applied[0].startswith("V0001__")
    seeded = await seed_services(conn) if created else []
    installed = await install_domains(conn, domains)
    # Raw's protections in every session mode, for domains made before they were (idempotent).
    await conn.execute("SELECT lake.protect_raw(domain) FROM lake.domains ORDER BY domain")
    return LakeSetup(applied, seeded, installed)


async def _check_ready(
    conn: asyncpg.Connection, domains: list[DomainTables], roles: LakeRoles
) -> None:
    me = await conn.fetchval("SELECT current_user")
    todo = await pending(conn)
    present = set()
    if not todo:
        present = {r[0] for r in await conn.fetch("SELECT domain FROM lake.domains")}
    missing = [d.name for d in domains if d.name not in present]
    if todo or missing:
        what = f"pending {', '.join(todo[:5])}" if todo else f"domains {', '.join(missing)}"
        raise LakeNotReady(
            f"the lake is not ready for {me} ({what}), who may not change it: an administrator "
            f"(who can act as {roles.owner}) must run `dataload db init` first"
        )
