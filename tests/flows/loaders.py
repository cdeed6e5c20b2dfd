"""`dataload run person` in processes of their own, and waiting for what their runs committed:
what the chaos and resume tests kill, start again and watch."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import asyncpg

__all__ = ["loaded_at_least", "start_loader", "wait_for"]


async def wait_for(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def loaded_at_least(conn_of: Callable[[], Awaitable[asyncpg.Connection]], records: int):
    """A check that the running person run has committed `records` records."""

    async def check() -> bool:
        conn = await conn_of()
        try:
            offered = await conn.fetchval(
                "SELECT offered FROM lake.runs WHERE domain = 'person' AND status = 'running'"
            )
        except asyncpg.UndefinedTableError:  # the run has not migrated the lake yet
            return False
        finally:
            await conn.close()
        return offered is not None and offered >= records

    return check


def start_loader(*extra_env: tuple[str, str], args: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """`dataload run person [args]` in a process of its own, with the test's environment."""
    env = {**os.environ, **dict(extra_env)}
    return subprocess.Popen(
        [sys.executable, "-m", "dataload.cli", "run", "person", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
