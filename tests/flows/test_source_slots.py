"""Per-source concurrency shared by shards: Prefect global concurrency limits sized to the
configured totals, each shard holding its share for its lifetime."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
)

from dataload.flows.source_slots import (
    ensure_source_limits,
    limit_name,
    source_limits,
    source_shares,
    source_slots,
    split_concurrency,
)
from dataload.settings import Settings


def _source() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"  # the server is shared by the session's tests


async def _active_slots(source: str) -> int:
    async with get_client() as client:
        return (await client.read_global_concurrency_limit_by_name(limit_name(source))).active_slots


def test_a_total_is_split_evenly_among_shards_each_getting_at_least_one() -> None:
    assert split_concurrency(10, 1) == [10]
    assert split_concurrency(10, 3) == [4, 3, 3]
    assert split_concurrency(8, 4) == [2, 2, 2, 2]
    assert split_concurrency(2, 3) == [1, 1, 1]
    with pytest.raises(ValueError, match="at least 1"):
        split_concurrency(4, 0)


def test_each_shard_gets_a_share_of_every_source_that_adds_up_to_the_configured_totals() -> None:
    settings = Settings(
        _env_file=None, DATALOAD_PSQUERY_CONCURRENCY=10, DATALOAD_SNAPLOGIC_CONCURRENCY=8
    )
    assert source_limits(settings) == {"peoplesoft": 10, "snaplogic": 8}
    assert source_shares(settings, 3) == [
        {"peoplesoft": 4, "snaplogic": 3},
        {"peoplesoft": 3, "snaplogic": 3},
        {"peoplesoft": 3, "snaplogic": 2},
    ]


async def test_limits_are_created_with_the_totals_and_follow_a_changed_total(
    prefect_api: str,
) -> None:
    source = _source()
    async with get_client() as client:
        await ensure_source_limits({source: 8})
        assert (await client.read_global_concurrency_limit_by_name(limit_name(source))).limit == 8
        await ensure_source_limits({source: 5})
        assert (await client.read_global_concurrency_limit_by_name(limit_name(source))).limit == 5


async def test_a_holder_occupies_its_whole_share_until_it_leaves(prefect_api: str) -> None:
    first, second = sorted([_source(), _source()])
    await ensure_source_limits({first: 5, second: 4})
    async with source_slots({first: 3, second: 2}):
        assert (await _active_slots(first), await _active_slots(second)) == (3, 2)
    assert (await _active_slots(first), await _active_slots(second)) == (0, 0)


async def test_two_holders_fill_a_limit_of_two_and_a_third_waits_for_one_to_leave(
    prefect_api: str,
) -> None:
    source = _source()
    await ensure_source_limits({source: 2})
    leave = [asyncio.Event(), asyncio.Event()]

    async def holder(index: int, holding: asyncio.Event) -> None:
        async with source_slots({source: 1}):
            holding.set()
            await leave[index].wait()

    holding = [asyncio.Event(), asyncio.Event()]
    holders = [asyncio.create_task(holder(i, holding[i])) for i in (0, 1)]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in holding)), timeout=30)
    assert await _active_slots(source) == 2

    with pytest.raises(AcquireConcurrencySlotTimeoutError):
        async with source_slots({source: 1}, timeout_s=1.5):
            pytest.fail("a third holder got a slot of a full limit")

    async def third() -> int:
        async with source_slots({source: 1}):
            return await _active_slots(source)

    waiting = asyncio.create_task(third())
    await asyncio.sleep(1.0)
    assert not waiting.done()
    leave[0].set()  # the first holder leaves
    assert await asyncio.wait_for(waiting, timeout=60) == 2
    leave[1].set()
    await asyncio.gather(*holders)
    assert await _active_slots(source) == 0


async def test_a_missing_limit_is_an_error_not_unbounded_concurrency(prefect_api: str) -> None:
    with pytest.raises(ConcurrencySlotAcquisitionError, match="must be created"):
        async with source_slots({_source(): 1}):
            pytest.fail("ran without the limit")
