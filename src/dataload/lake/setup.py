"""`dataload db init` as a function: what a flow runs before it loads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg

from dataload.lake.filters import ServiceChange, seed_services
from dataload.lake.install import DomainTables, install_domains
from dataload.lake.migrate import migrate

__all__ = ["LakeSetup", "init_lake"]


@dataclass(frozen=True)
class LakeSetup:
    migrations: list[str]  # labels of the migrations applied now
    seeded: list[ServiceChange]  # shipped services given to a lake created now
    installed: list[str] = field(default_factory=list)  # declared domains installed now


async def init_lake(conn: asyncpg.Connection, domains: Iterable[DomainTables] = ()) -> LakeSetup:
    """Apply pending migrations and secure the curated layer; a new lake gets the shipped
    services; declared `domains` the lake does not have yet are installed, with their services.

    Only a new lake is seeded: a domain whose services were all removed on purpose (with
    `dataload services sync`) must not get them back at the next run.
    """
    applied = await migrate(conn)
    # Every document domain's curated tables under row-level security, including domains
    # installed after the migration that introduced it; a no-op (no lock taken) when already in
    # place. Tabular domains' services are views, granted one by one.
    await conn.execute(
        "SELECT lake.secure_curated(domain) FROM lake.domains"
        " WHERE domain NOT IN (SELECT domain FROM lake.tables) ORDER BY domain"
    )
    created = bool(applied) and applied[0].startswith("V0001__")
    seeded = await seed_services(conn) if created else []
    return LakeSetup(applied, seeded, await install_domains(conn, domains))
