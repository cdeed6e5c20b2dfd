"""Writing records into a ledger run, batch by batch (each batch is one transaction)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from dataload.flows.progress import Step
from dataload.lake import LoadRun

__all__ = ["batched", "load_records"]


def batched(records: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(records)
    while batch := list(islice(iterator, size)):
        yield batch


@task(name="load-records", retries=0, cache_policy=NO_CACHE)
async def load_records(
    run: LoadRun, records: list[dict[str, Any]], *, batch_size: int, step: Step | None = None
) -> int:
    """Write `records` into the lake in batches of `batch_size`; returns how many were offered."""
    for batch in batched(records, batch_size):
        await run.load(batch)
        if step:
            step.add(len(batch))
    return len(records)
