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
    seeded: list[ServiceChange]  # shipped services added to domains that had none


async def init_lake(conn: asyncpg.Connection) -> LakeSetup:
    """Apply pending migrations, then give service-less domains the shipped services."""
    return LakeSetup(await migrate(conn), await seed_services(conn))
