"""The retry policy's pure parts: Retry-After parsing, backoff bounds, the wait budget."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from dataload.sources.errors import (
    SourceAuthError,
    SourceRateLimited,
    SourceServerError,
)
from dataload.sources.retry import RetryPolicy, parse_retry_after, retrying

NOW = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)


def error(kind=SourceServerError, **kw):
    return kind(source="Test API", endpoint="http://h/x", problem="answered 500", hint="h", **kw)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        ("Sun, 22 Nov 2026 03:00:10 GMT", 10.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(header, expected):
    assert parse_retry_after(header, now=NOW) == expected


def test_backoff_is_full_jitter_under_an_exponential_ceiling():
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0), (500, 8.0)]:
        delays = [policy.backoff(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # spread over the range, not pinned to a value
        assert min(delays) < ceiling / 2


def test_retry_after_is_honoured_up_to_the_cap():
    policy = RetryPolicy(base_delay=0.1, max_retry_after=5.0)
    assert 2.0 <= policy.delay(error(SourceRateLimited, retry_after=2.0), 1) <= 2.1
    assert 5.0 <= policy.delay(error(SourceRateLimited, retry_after=3600.0), 1) <= 5.1


def test_policy_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-1)


async def test_retrying_stops_after_max_attempts_and_reports_them():
    calls = 0

    async def send():
        nonlocal calls
        calls += 1
        raise error()

    with pytest.raises(SourceServerError) as raised:
        await retrying(send, RetryPolicy(max_attempts=3, base_delay=0.001))
    assert calls == 3
    assert raised.value.attempts == 3
    assert "gave up after 3 attempts" in str(raised.value)


async def test_retrying_never_retries_an_auth_error():
    calls = 0

    async def send():
        nonlocal calls
        calls += 1
        raise error(SourceAuthError)

    with pytest.raises(SourceAuthError) as raised:
        await retrying(send, RetryPolicy(max_attempts=5, base_delay=0.001))
    assert calls == 1
    assert "gave up" not in str(raised.value)


async def test_retrying_gives_up_rather_than_exceed_the_total_wait_budget():
    calls = 0

    async def send():
        nonlocal calls
        calls += 1
        raise error(SourceRateLimited, retry_after=0.3)

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(SourceRateLimited):
        await retrying(send, RetryPolicy(max_attempts=10, base_delay=0.0, max_total_wait=0.7))
    assert calls == 3  # waits 0.3 + 0.3; a third wait would pass 0.7
    assert loop.time() - started < 0.85  # gave up instead of sleeping a third time (0.9 s)


async def test_retrying_returns_the_first_success_and_calls_on_retry_for_each_wait():
    answers = [error(), error(SourceRateLimited, retry_after=0.0), "done"]
    seen = []

    async def send():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    result = await retrying(
        send,
        RetryPolicy(base_delay=0.001),
        on_retry=lambda err, attempt, delay: seen.append((type(err), attempt)),
    )
    assert result == "done"
    assert seen == [(SourceServerError, 1), (SourceRateLimited, 2)]


async def test_retry_budget_limits_retries_across_calls_once_the_reserve_is_spent():
    policy = RetryPolicy(max_attempts=4, base_delay=0.0, budget_reserve=3, budget_ratio=0.5)
    budget = policy.new_budget()
    sent = 0

    async def send():
        nonlocal sent
        sent += 1
        raise error()

    errors = []
    for _ in range(10):
        with pytest.raises(SourceServerError) as raised:
            await retrying(send, policy, budget=budget)
        errors.append(raised.value)
    # 10 first attempts, the reserve of 3, then half a retry per call.
    assert sent == 10 + 3 + 4
    assert errors[0].attempts == 4 and not errors[0].out_of_budget
    assert errors[-1].out_of_budget
    assert "too many failures on this client to keep retrying" in str(errors[-1])


async def test_retry_budget_stays_full_when_failures_are_occasional():
    policy = RetryPolicy(max_attempts=3, base_delay=0.0, budget_reserve=5, budget_ratio=0.2)
    budget = policy.new_budget()
    for call in range(200):
        failures = [error()] if call % 10 == 0 else []  # one call in ten fails once

        async def send(failures=failures):
            if failures:
                raise failures.pop()
            return "ok"

        assert await retrying(send, policy, budget=budget) == "ok"
