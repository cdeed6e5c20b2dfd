"""Keyed tables on a real PostgreSQL: row hashes compared in SQL, repeats stored once, clashes
rejected, deletions only from a complete listing and within the mass-deletion guard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from dataload.domains.table import Column, ColumnService, Table
from dataload.lake import Lake, RunSummary
from dataload.lake.db import dsn
from dataload.lake.history import record_history
from dataload.lake.install import DomainTables, install_domains
from dataload.lake.tables import RejectionLimit, TableLoad
from dataload.settings import Settings

RATES = Table(
    columns=(
        Column("base", "text"),
        Column("day", "date"),
        Column("rate", "numeric(12,4)", required=True),
    ),
    key=("base", "day"),
    services={"usd": ColumnService(("day", "rate"), where="base = 'USD'")},
)


def rate(base: str, day: int, value: float) -> dict[str, Any]:
    return {"base": base, "day": f"2026-05-{day:02d}", "rate": value}


async def batches(*items: list[dict[str, Any]]) -> AsyncIterator[list[dict[str, Any]]]:
    for item in items:
        yield item


@pytest.fixture
async def rates(conn: asyncpg.Connection) -> str:
    await install_domains(conn, [DomainTables("rates", RATES.key, (), (), table=RATES)])
    return "rates"


async def load(
    pool: asyncpg.Pool,
    settings: Settings,
    *items: list[dict[str, Any]],
    complete: bool = False,
    max_rejected_share: float | None = None,
) -> RunSummary:
    run = await Lake(pool).start_run("rates")
    try:
        loader = TableLoad(
            run, dsn(settings), declared=RATES, max_rejected_share=max_rejected_share
        )
        await loader.load_keyed(batches(*items))
    except BaseException:
        await run.fail("test load failed")
        raise
    if complete:
        return await run.finish(complete=True)
    return await run.finish_incremental()


async def test_changes_are_found_by_row_hash_and_an_unchanged_reload_stores_nothing(
    pool: asyncpg.Pool, lake_db: Settings, conn: asyncpg.Connection, rates: str
) -> None:
    first = await load(pool, lake_db, [rate("EUR", 1, 1.1), rate("EUR", 2, 1.2)])
    same = await load(pool, lake_db, [rate("EUR", 2, 1.2), rate("EUR", 1, 1.1)])
    changed = await load(pool, lake_db, [rate("EUR", 1, 1.15), rate("EUR", 2, 1.2)])

    assert (first.inserted, first.changed, first.unchanged) == (2, 0, 0)
    assert (same.inserted, same.changed, same.unchanged) == (0, 0, 2)
    assert (changed.inserted, changed.changed, changed.unchanged) == (0, 1, 1)
    assert await conn.fetchval("SELECT count(*) FROM rates_raw.rates") == 3
    current = await conn.fetchval(
        "SELECT rate::text FROM rates_xform.rates WHERE base = 'EUR' AND day = '2026-05-01'"
    )
    assert current == "1.1500"
    versions = await record_history(conn, "rates", ["EUR", "2026-05-01"])
    assert [v.data["rate"] for v in versions] == [1.1, 1.15]


async def test_a_repeated_row_is_stored_once_and_a_clash_is_rejected(
    pool: asyncpg.Pool, lake_db: Settings, conn: asyncpg.Connection, rates: str
) -> None:
    summary = await load(
        pool,
        lake_db,
        [rate("EUR", 1, 1.1), rate("EUR", 1, 1.1), rate("USD", 1, 0.9), rate("USD", 1, 0.95)],
        [rate("EUR", 1, 1.1), rate("EUR", 2, 1.2), rate("EUR", 2, 1.25)],
        [rate("EUR", 3, 1.3)],
        [rate("EUR", 3, 1.31)],
    )

    # EUR 1 three times identical: stored once, two repeats. USD 1 and EUR 2 clash in their
    # batch; EUR 3 differs from what the run stored in an earlier batch.
    assert (summary.inserted, summary.repeated, summary.rejected) == (2, 2, 5)
    samples = await conn.fetch("SELECT sample FROM lake.rejected ORDER BY sample")
    assert samples[0]["sample"] == '{"key": {"day": "2026-05-01", "base": "USD"}}'  # no rate
    reasons = await conn.fetch("SELECT reason, count(*) FROM lake.rejected GROUP BY 1 ORDER BY 1")
    assert [tuple(r) for r in reasons] == [
        ("key offered again in this run with different content", 1),
        ("key offered twice with different content in one batch", 4),
    ]
    stored = await conn.fetch(
        "SELECT base, day::text, rate::float FROM rates_xform.rates ORDER BY 1, 2"
    )
    assert [tuple(r) for r in stored] == [("EUR", "2026-05-01", 1.1), ("EUR", "2026-05-03", 1.3)]


async def test_a_complete_listing_deletes_the_unseen_within_the_guard(
    pool: asyncpg.Pool, lake_db: Settings, conn: asyncpg.Connection, rates: str
) -> None:
    everything = [rate("EUR", day, 1.0 + day / 100) for day in range(1, 31)]
    await load(pool, lake_db, everything, complete=True)

    one_gone = await load(pool, lake_db, everything[1:], complete=True)
    many_gone = await load(pool, lake_db, everything[10:], complete=True)

    assert (one_gone.status, one_gone.deleted) == ("complete", 1)
    assert many_gone.status == "guarded" and many_gone.deleted == 0
    live = await conn.fetchval("SELECT count(*) FROM rates_xform.rates WHERE deleted_at IS NULL")
    assert live == 29
    assert await conn.fetchval("SELECT count(*) FROM rates_raw.rates WHERE deleted") == 1
    assert await conn.fetchval("SELECT count(*) FROM rates_curated.usd") == 0


async def test_rejections_above_the_domains_share_roll_the_batch_back(
    pool: asyncpg.Pool, lake_db: Settings, conn: asyncpg.Connection, rates: str
) -> None:
    bad = [rate("EUR", day, "n/a" if day % 2 else 1.0) for day in range(1, 11)]

    with pytest.raises(RejectionLimit, match="5 of 10 rows were rejected"):
        await load(pool, lake_db, bad, max_rejected_share=0.05)

    assert await conn.fetchval("SELECT count(*) FROM rates_raw.rates") == 0
    assert await conn.fetchval("SELECT status FROM lake.runs") == "failed"
