"""exchange_rates: incremental by date with its cursor in the lake, backfill in chunks, full
refresh, and transient failures retried; currencies: a complete snapshot."""

from __future__ import annotations

from datetime import date

import pytest
from tests.flows.world import World

from dataload.examples.exchange_rates import date_chunks
from dataload.flows.domain import domain_flow
from dataload.sandbox.config import Faults

pytestmark = pytest.mark.slow

XFORM = "exchange_rates_xform.exchange_rates"
#: A row per currency: the sandbox knows 31 currencies, the base among them.
RATES = 30


@pytest.fixture(autouse=True)
def _rates_from_april(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_RATES_START", "2026-04-20")  # sandbox day 1 is 2026-05-01
    monkeypatch.setenv("EXCHANGE_RATES_BASES", "EUR,USD")


async def cursor(world: World) -> str | None:
    return await world.conn.fetchval(
        "SELECT value FROM lake.cursors WHERE domain = 'exchange_rates'"
    )


def test_a_range_is_cut_into_chunks_that_cover_it_once() -> None:
    chunks = date_chunks(date(2026, 1, 1), date(2026, 3, 5), 31)
    assert chunks[0] == (date(2026, 1, 1), date(2026, 1, 31))
    assert chunks[-1] == (date(2026, 3, 4), date(2026, 3, 5))
    assert sum((last - first).days + 1 for first, last in chunks) == 64


async def test_runs_continue_after_the_cursor_kept_in_the_lake(world: World) -> None:
    first = await domain_flow("exchange_rates")

    # 2026-04-20 .. 2026-04-30, the API's latest day (1 May is a TARGET holiday): nine working
    # days, two bases.
    assert first.status == "incremental" and first.counts["new"] == 18 * RATES
    assert await cursor(world) == "2026-04-30"

    world.sandbox.config.day = 4  # Monday 2026-05-04
    second = await domain_flow("exchange_rates")

    # 1 May .. 4 May, which the API answers from 30 April: only the days asked for are kept.
    assert second.counts["fetched"] == 2 * RATES and second.counts["new"] == 2 * RATES
    assert await cursor(world) == "2026-05-04"
    days = f"SELECT count(DISTINCT (base, date)) FROM {XFORM} WHERE deleted_at IS NULL"
    assert await world.count(days) == 20


async def test_a_backfill_loads_its_range_in_chunks_and_leaves_the_cursor(world: World) -> None:
    await domain_flow("exchange_rates")

    report = await domain_flow(
        "exchange_rates", {"start": "2026-03-01", "end": "2026-03-31", "chunk_days": "10"}
    )

    assert report.fetched["chunks"] == 8  # 4 chunks of March, 2 bases
    assert report.counts["new"] == 2 * 22 * RATES  # March 2026 has 22 working days
    assert report.counts["deleted"] == 0
    assert await cursor(world) == "2026-04-30"  # a backfill of the past does not move it back


async def test_chunks_keep_only_the_days_they_asked_for(world: World) -> None:
    # The API answers each range from the working day on or before its start: 1 January (a
    # holiday) from 29 December, Sunday 7 January from Friday the 5th, already loaded.
    report = await domain_flow(
        "exchange_rates",
        {"start": "2024-01-01", "end": "2024-01-10", "chunk_days": "3", "bases": "EUR"},
    )

    days = await world.column(f"SELECT DISTINCT date::text FROM {XFORM} ORDER BY 1")
    assert days == [f"2024-01-{d:02d}" for d in (2, 3, 4, 5, 8, 9, 10)]
    assert report.counts["fetched"] == 7 * RATES and report.counts["new"] == 7 * RATES
    assert report.counts.get("repeated", 0) == 0 and report.counts["rejected"] == 0


async def test_a_full_refresh_rereads_everything_and_deletes_what_is_gone(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await domain_flow("exchange_rates")
    await domain_flow(
        "exchange_rates", {"start": "2026-04-17", "end": "2026-04-17", "bases": "EUR"}
    )
    world.sandbox.config.day = 4

    report = await domain_flow("exchange_rates", full_refresh=True)

    # From EXCHANGE_RATES_START again: the nine days held are unchanged, Monday is new, and the
    # backfilled 17 April is outside the refreshed history, so it is deleted.
    assert report.counts["unchanged"] == 18 * RATES and report.counts["new"] == 2 * RATES
    assert report.counts["deleted"] == RATES
    assert await cursor(world) == "2026-05-04"


async def test_transient_failures_are_retried_with_backoff(world: World) -> None:
    world.sandbox.config.endpoint_faults["frankfurter"] = Faults(http_5xx_rate=0.3)

    report = await domain_flow("exchange_rates", {"chunk_days": "2"})

    assert report.succeeded and report.counts["new"] == 18 * RATES
    assert report.sources["Frankfurter"].retries > 0


async def test_a_consumer_view_holds_its_base_only(world: World) -> None:
    await domain_flow("exchange_rates")

    bases = await world.column(
        "SELECT DISTINCT currency <> 'USD' FROM exchange_rates_curated.usd_rates"
    )
    rows = await world.count("SELECT count(*) FROM exchange_rates_curated.usd_rates")

    assert bases == [True] and rows == 9 * RATES


async def test_bad_parameters_fail_with_one_clear_line(world: World) -> None:
    with pytest.raises(
        ValueError, match="exchange_rates parameters: end 2026-03-01 is before start"
    ):
        await domain_flow("exchange_rates", {"start": "2026-03-02", "end": "2026-03-01"})


async def test_currencies_are_a_complete_snapshot(world: World) -> None:
    first = await domain_flow("currencies")
    del world.sandbox.config.examples.currencies["ISK"]

    second = await domain_flow("currencies")

    assert first.counts["new"] == 31
    assert second.counts["deleted"] == 1
    deleted = await world.column(
        "SELECT code FROM currencies_xform.current_currencies_data WHERE deleted_at IS NOT NULL"
    )
    assert deleted == ["ISK"]
