"""Concurrency per source system, global across shards: Prefect global concurrency limits.

Each source system has a limit named `dataload-<source>` (`dataload-peoplesoft`,
`dataload-snaplogic`) whose size is the configured concurrency (DATALOAD_PSQUERY_CONCURRENCY,
DATALOAD_SNAPLOGIC_CONCURRENCY). Taking a slot per HTTP call would cost an API round trip per
call, hundreds a second, so a shard takes its share once, for its lifetime, and opens exactly
that many connections:

```
parent:  await ensure_source_limits(source_limits(settings))       # sizes = configured totals
         shares = source_shares(settings, shards)                  # e.g. 10 -> [4, 3, 3]
shard i: async with source_slots(shares[i]):                       # held while the shard works
             ... local concurrency = shares[i][source] ...
```

The shares add up to the totals, so N shards hold every slot between them and never send more
concurrent calls than configured. When a total is smaller than the number of shards each shard
still needs one slot: the shards that do not get one wait (they start as others end), and the
limit still holds. The slots are leased: renewed while held (by Prefect, in a thread), returned
on leaving, and given back by the server when the lease of a killed shard expires. A shard whose
lease can no longer be renewed is stopped rather than left running beyond its share.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.asyncio import concurrency
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectNotFound

from dataload.settings import Settings

__all__ = [
    "LEASE_S",
    "ensure_source_limits",
    "limit_name",
    "source_limits",
    "source_shares",
    "source_slots",
    "split_concurrency",
]

#: Seconds a lease lasts unless renewed (Prefect renews it at 3/4 of this; 60 s is its minimum):
#: how long the slots of a killed shard stay taken.
LEASE_S = 120.0


def limit_name(source: str) -> str:
    """The Prefect global concurrency limit of a source system."""
    return f"dataload-{source}"


def source_limits(settings: Settings) -> dict[str, int]:
    """The configured concurrency of each source system the person flow calls per person."""
    return {
        "peoplesoft": settings.psquery_concurrency,
        "snaplogic": settings.snaplogic_concurrency,
    }


def split_concurrency(total: int, shards: int) -> list[int]:
    """`total` concurrent calls split among `shards`, as evenly as can be, each at least 1:
    `split_concurrency(10, 3) == [4, 3, 3]`; `split_concurrency(2, 3) == [1, 1, 1]` (the sum
    exceeds the total: the global limit then makes one shard wait)."""
    if total < 1 or shards < 1:
        raise ValueError(f"need a total and a shard count of at least 1 (got {total}, {shards})")
    base, extra = divmod(total, shards)
    return [max(1, base + (1 if index < extra else 0)) for index in range(shards)]


def source_shares(settings: Settings, shards: int) -> list[dict[str, int]]:
    """Each shard's share of every source's concurrency: `source_shares(s, n)[i]` is what shard
    `i` (counted from 0) holds in `source_slots` and uses as its local concurrency."""
    splits = {
        source: split_concurrency(total, shards)
        for source, total in source_limits(settings).items()
    }
    return [{source: split[index] for source, split in splits.items()} for index in range(shards)]


async def ensure_source_limits(limits: Mapping[str, int], *, fresh: bool = False) -> None:
    """Create each source's global concurrency limit with its total, or set it to it.

    `fresh`: drop what the limits hold first, for a caller that knows nobody holds their slots
    by right (the person run holding the domain's writer lock: a killed run's shards hold
    slots until their leases expire, and on a server without its services, never)."""
    async with get_client() as client:
        for source, total in limits.items():
            if fresh:
                try:
                    await client.delete_global_concurrency_limit_by_name(limit_name(source))
                except ObjectNotFound:
                    pass
            await client.upsert_global_concurrency_limit_by_name(limit_name(source), total)


@asynccontextmanager
async def source_slots(
    shares: Mapping[str, int], *, timeout_s: float | None = None
) -> AsyncIterator[None]:
    """Hold `shares[source]` slots of each source's global limit while the block runs.

    Waits (up to `timeout_s`, default without end) until the slots are free; raises
    `prefect.concurrency.asyncio.ConcurrencySlotAcquisitionError` if a limit does not exist
    (`ensure_source_limits` first), rather than running unbounded. Sources are taken in name
    order, so two shards never each hold what the other waits for.
    """
    context = FlowRunContext.get()
    holder = (
        ConcurrencyLeaseHolder(type="flow_run", id=context.flow_run.id)
        if context and context.flow_run
        else None
    )
    async with AsyncExitStack() as stack:
        for source in sorted(shares):
            await stack.enter_async_context(
                concurrency(
                    limit_name(source),
                    occupy=shares[source],
                    timeout_seconds=timeout_s,
                    lease_duration=LEASE_S,
                    strict=True,
                    holder=holder,
                )
            )
        yield
