"""A tiny flow for the shard tests: local workers import it by its module path (the tests put the
repository on their PYTHONPATH), as they import `dataload.flows.person` in production."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from prefect import flow

from dataload.flows.source_slots import source_slots

__all__ = ["shard_probe"]


@flow(name="shard-probe", persist_result=False)
async def shard_probe(
    shard: int,
    record: str,
    sleep_s: float = 0.0,
    fail: bool = False,
    slots: dict[str, int] | None = None,
) -> None:
    """Hold `slots` (if any) for `sleep_s` seconds, noting in `record` when it held them, its
    process and the environment it saw; fail instead if told to."""
    if fail:
        raise RuntimeError(f"shard {shard} was told to fail")
    async with source_slots(slots or {}):
        held_from = time.time()
        await asyncio.sleep(sleep_s)
        held_to = time.time()
    note = {
        "shard": shard,
        "pid": os.getpid(),
        "from": held_from,
        "to": held_to,
        "marker": os.environ.get("SHARD_PROBE_MARKER"),
    }
    _append(Path(record), note)


def _append(path: Path, note: dict[str, object]) -> None:
    with path.open("a") as out:  # one short line: shards append without mixing
        out.write(json.dumps(note) + "\n")
