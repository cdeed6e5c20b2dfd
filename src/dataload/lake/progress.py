"""What a run keeps besides records: its domain's cursor, and records a validation step refused.

The cursor is where an incremental domain's last finished run stopped (lake.cursors); records
refused before the load are kept in lake.rejected with their reasons and counted in the run's
ledger as offered and rejected, like the records the write path itself rejects.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import orjson

from dataload.lake.batch import SAMPLE_CHARS

__all__ = ["read_cursor", "record_rejections", "save_cursor"]


async def read_cursor(pool: asyncpg.Pool, domain: str) -> str | None:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT value FROM lake.cursors WHERE domain = $1", domain)


async def save_cursor(pool: asyncpg.Pool, run_id: int, value: str) -> None:
    """Keep `value` as the cursor of the run's domain (an incremental run keeps its cursor as it
    finishes: `LoadRun.finish_incremental`)."""
    async with pool.acquire() as conn:
        await conn.execute("SELECT lake.save_cursor($1, $2)", run_id, value)


async def record_rejections(
    pool: asyncpg.Pool, run_id: int, rejections: Sequence[tuple[str, str]]
) -> None:
    """Keep (reason, sample) pairs of records refused before the load, in the run's ledger."""
    if not rejections:
        return
    rejects = [{"reason": reason, "sample": sample[:SAMPLE_CHARS]} for reason, sample in rejections]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT lake.record_batch($1, $2, 0, 0, 0, $2, $3::jsonb)",
            run_id,
            len(rejects),
            orjson.dumps(rejects).decode(),
        )
