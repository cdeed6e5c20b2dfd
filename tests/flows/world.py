"""What a flow test works with: the sandbox, the settings the flows read, the database."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from dataload.sandbox.server import SandboxHandle
from dataload.settings import Settings

__all__ = ["World"]


@dataclass
class World:
    """What a flow test works with: the sandbox, the settings the flows read, the database."""

    sandbox: SandboxHandle
    settings: Settings
    conn: asyncpg.Connection

    async def count(self, sql: str, *args: object) -> int:
        return int(await self.conn.fetchval(sql, *args))

    async def column(self, sql: str, *args: object) -> list:
        return [row[0] for row in await self.conn.fetch(sql, *args)]

    async def last_run(self, domain: str) -> asyncpg.Record:
        return await self.conn.fetchrow(
            "SELECT * FROM lake.runs WHERE domain = $1 ORDER BY run_id DESC LIMIT 1", domain
        )
