"""The one retry policy of the source clients: which failures are retried, and how long to wait.

Only transient failures are retried (connection and read errors, timeouts, 5xx, 429, bodies cut
mid-way); auth failures, 404s and bad data never are, so wrong credentials cost one request, not
a storm. Waits use exponential backoff with full jitter, except when the server says how long to
wait (Retry-After, in seconds or as an HTTP date), which is honoured up to a cap. Both the number
of attempts and the total time spent waiting are bounded, and so is the share of retries a
client makes over all its calls (a retry budget): when a system is down for thousands of queued
calls, each one fails after about one request instead of `max_attempts`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from dataload.sources.errors import SourceError, SourceRefused

__all__ = ["RetryBudget", "RetryPolicy", "parse_retry_after", "retrying"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a client retries transient failures."""

    #: Requests made at most for one call, the first included (1 = never retry). Six keeps a
    #: call's chance of failing at a 10 % fault rate near one in a million (tens of thousands of
    #: calls per run); the budget below keeps it from multiplying requests in an outage.
    max_attempts: int = 6
    #: The first backoff ceiling in seconds; it doubles with each attempt.
    base_delay: float = 0.5
    #: The backoff ceiling never grows beyond this.
    max_delay: float = 30.0
    #: Give up rather than wait more than this in total for one call.
    max_total_wait: float = 300.0
    #: A server's Retry-After is honoured up to this many seconds.
    max_retry_after: float = 120.0
    #: Retries a client may make in a burst before the budget applies.
    budget_reserve: float = 20.0
    #: Retries earned by each call: in a long outage, retries per call tend to this.
    budget_ratio: float = 0.2
    #: A refused connection (nothing listens on the port) is tried at most this many times,
    #: with backoff ceilings of `base_delay` at most: its cause rarely passes in seconds, and
    #: the operator hears of it in about a second instead of after the 503 schedule's ~15 s.
    refused_attempts: int = 3

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.max_total_wait, self.max_retry_after) < 0:
            raise ValueError("retry delays must not be negative")
        if min(self.budget_reserve, self.budget_ratio) < 0:
            raise ValueError("the retry budget must not be negative")

    def new_budget(self) -> RetryBudget:
        """A fresh budget for one client."""
        return RetryBudget(reserve=self.budget_reserve, ratio=self.budget_ratio)

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff after the `attempt`-th failed request (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(attempt - 1, 32))
        return random.uniform(0, ceiling)

    def attempts_for(self, error: SourceError) -> int:
        """Requests made at most for a call failing with `error`."""
        if isinstance(error, SourceRefused):
            return min(self.max_attempts, self.refused_attempts)
        return self.max_attempts

    def delay(self, error: SourceError, attempt: int) -> float:
        """How long to wait before retrying after `error` on the `attempt`-th request.

        A Retry-After is honoured (capped), plus a little jitter so that the callers a server
        turned away together do not all come back in the same instant.
        """
        if error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after) + random.uniform(0, self.base_delay)
        if isinstance(error, SourceRefused):
            return random.uniform(0, self.base_delay)
        return self.backoff(attempt)


class RetryBudget:
    """The retries one client may still make: a reserve, refilled by `ratio` with each call.

    Spent by every retry, whatever the call; calls that never fail keep it full.
    """

    def __init__(self, *, reserve: float, ratio: float) -> None:
        self._reserve = reserve
        self._ratio = ratio
        self._tokens = reserve

    def earn(self) -> None:
        self._tokens = min(self._reserve, self._tokens + self._ratio)

    def spend(self) -> bool:
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # HTTP dates are GMT; a naive parse means "-0000"
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN, inf
        return None
    return max(0.0, seconds)


async def retrying(
    send: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    budget: RetryBudget | None = None,
    on_retry: Callable[[SourceError, int, float], None] | None = None,
) -> T:
    """Await `send()` until it succeeds, retrying retryable `SourceError`s under `policy`
    (and within `budget`, shared by all calls of one client).

    `on_retry(error, attempt, delay)` is called before each wait (for logs and stats). The error
    that ends the loop is raised with `attempts` set to the number of requests made.
    """
    if budget is not None:
        budget.earn()
    waited = 0.0
    attempt = 1
    while True:
        try:
            return await send()
        except SourceError as error:
            delay = policy.delay(error, attempt) if error.retryable else 0.0
            if (
                not error.retryable
                or attempt >= policy.attempts_for(error)
                or waited + delay > policy.max_total_wait
            ):
                error.attempts = attempt
                raise
            if budget is not None and not budget.spend():
                error.attempts = attempt
                error.out_of_budget = True
                raise
            if on_retry is not None:
                on_retry(error, attempt, delay)
            await asyncio.sleep(delay)
            waited += delay
            attempt += 1
