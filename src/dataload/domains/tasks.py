"""Prefect tasks for domain modules, made when first called.

A domain module is imported by `dataload domains`, `dataload run`'s checks and `db init`, before
Prefect is configured (it reads its settings when first imported). A module that wants a step
of its source to show as a task in the Prefect UI, or cached by it, wraps the function with
`lazy_task`: Prefect is imported on the first call, inside a flow run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

__all__ = ["lazy_task"]


def lazy_task(
    name: str, *, cache_inputs_except: Sequence[str] | None = None, cache_days: float = 30
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate `fn` as the task `name` (no retries: the source clients retry). With
    `cache_inputs_except`, its result is cached by its other inputs and its source for
    `cache_days`, across runs; `.refreshing(...)` calls it ignoring the cache; `.fn` is the
    plain function."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.cache
        def made(refresh: bool = False) -> Any:
            from prefect import task
            from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE

            if cache_inputs_except is None:
                return task(fn, name=name, retries=0, cache_policy=NO_CACHE)
            inputs = INPUTS
            for excluded in cache_inputs_except:
                inputs = inputs - excluded
            return task(
                fn,
                name=name,
                retries=0,
                cache_policy=inputs + TASK_SOURCE,
                cache_expiration=timedelta(days=cache_days),
                persist_result=True,
                refresh_cache=refresh,
            )

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            return made()(*args, **kwargs)

        call.refreshing = lambda *args, **kwargs: made(True)(*args, **kwargs)  # type: ignore[attr-defined]
        call.fn = fn  # type: ignore[attr-defined]
        return call

    return decorate
