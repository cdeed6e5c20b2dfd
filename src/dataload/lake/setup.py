"""`dataload db init` as a function: what a flow runs before it loads."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from dataload.lake.filters import ServiceChange, seed_services
from dataload.lake.migrate import migrate

__all__ = ["LakeSetup", "init_lake"]


@dataclass(frozen=True)
class LakeSetup:
    migrations: list[str]  # labels of the migrations applied now
    seeded: list[ServiceChange]  # shipped services given to a lake created now


async def init_lake(conn: asyncpg.Connection) -> LakeSetup:
    """Apply pending migrations; a lake created now also gets the shipped services.

    Only a new lake is seeded: a domain whose services were all removed on purpose (with
    `dataload services sync`) must not get them back at the next run.
    """
    applied = await migrate(conn)
    created = bool(applied) and applied[0].startswith("V0001__")
    return LakeSetup(applied, await seed_services(conn) if created else [])
