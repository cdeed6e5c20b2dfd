"""Small asyncio helpers the flows share: run coroutines together, bounded, failing as one.

When one of several concurrent calls fails, the others are cancelled (their HTTP requests
closed) and the failure that started it is raised as itself, not wrapped in an
ExceptionGroup, so that the flow's error names the system that failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

__all__ = ["first_error", "gather_all", "map_bounded"]

T = TypeVar("T")
R = TypeVar("R")


def first_error(error: BaseException) -> BaseException:
    """The first real failure inside (possibly nested) exception groups."""
    while isinstance(error, BaseExceptionGroup):
        causes = [e for e in error.exceptions if not isinstance(e, asyncio.CancelledError)]
        error = (causes or list(error.exceptions))[0]
    return error


async def gather_all(*calls: Awaitable[T]) -> list[T]:
    """Await `calls` concurrently; on the first failure cancel the rest and raise it."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_awaited(call)) for call in calls]
    except BaseExceptionGroup as group_error:
        raise first_error(group_error) from None
    return [task.result() for task in tasks]


async def map_bounded(
    function: Callable[[T], Awaitable[R]], items: Iterable[T], *, limit: int
) -> list[R]:
    """`function(item)` for every item, at most `limit` at once, results in input order."""
    items = list(items)
    results: list[R | None] = [None] * len(items)
    pending = iter(enumerate(items))

    async def worker() -> None:
        for index, item in pending:  # one shared iterator: each item is taken once
            results[index] = await function(item)

    await gather_all(*(worker() for _ in range(min(limit, len(items)))))
    return results  # type: ignore[return-value]


async def _awaited(call: Awaitable[T]) -> T:
    return await call
