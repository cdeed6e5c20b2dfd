"""A Frankfurter-style exchange-rate API (https://api.frankfurter.dev/v1), as seed 002 uses it.

    GET /frankfurter/v1/{start}..{end}?base=EUR   working days' rates, from the working day
                                                  on or before `start` to `end`
    GET /frankfurter/v1/{date}?base=EUR           one day (the working day on or before it)
    GET /frankfurter/v1/latest?base=EUR           the last working day's rates
    GET /frankfurter/v1/currencies                code -> name

Rates are a deterministic function of (seed, base, currency, date); the sandbox's "today" is the
calendar date of its current day, and no rate exists after it (a range is cut there, a day after
it is not found), as the real API has none for the future. Like the ECB's reference rates the
real API serves, there are none on weekends and TARGET closing days (1 January, Good Friday,
Easter Monday, 1 May, 25 and 26 December).

A range answers as the real one does (its query is `date >= the latest date with rates on or
before start`): it begins at the working day on or before `start`, so
`/2024-01-01..2024-01-05` answers from Friday 2023-12-29, and a range starting on a Saturday
answers from the Friday before. A client that asks for consecutive ranges gets the day before
each boundary twice, and must keep only the days it asked for.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dataload.sandbox.config import SandboxConfig
from dataload.sandbox.gate import Gate
from dataload.sandbox.rng import mix, unit
from dataload.sandbox.systems import System, json_response

__all__ = ["FRANKFURTER", "is_working_day", "rate", "routes", "working_day_on_or_before"]

FRANKFURTER = System("frankfurter", b'{"amount": 1.0, "base": "EUR", "rates": {"USD": 1.0', None)
_MAX_DAYS = 366 * 5  # a longer range is refused, as a real API limits its answers


def _per_euro(seed: int, code: str, day: date) -> float:
    """Units of `code` per euro on `day`: a level per currency and a slow daily walk."""
    if code == "EUR":
        return 1.0
    key = mix(seed, 9001, *code.encode())
    level = math.exp(unit(key) * 8 - 2)  # 0.14 .. 400
    drift = 0.05 * math.sin(day.toordinal() / 40 + unit(mix(key, 1)) * 6.28)
    noise = 0.01 * (unit(mix(key, day.toordinal())) - 0.5)
    return level * (1 + drift + noise)


def rate(seed: int, base: str, code: str, day: date) -> float:
    return round(_per_euro(seed, code, day) / _per_euro(seed, base, day), 5)


def _easter(year: int) -> date:
    """Easter Sunday of `year` (Gregorian calendar; the anonymous computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


def is_working_day(day: date) -> bool:
    """Whether the ECB publishes reference rates on `day`: not on weekends, nor on TARGET
    closing days."""
    if day.weekday() >= 5 or (day.month, day.day) in ((1, 1), (5, 1), (12, 25), (12, 26)):
        return False
    easter = _easter(day.year)
    return day not in (easter - timedelta(days=2), easter + timedelta(days=1))


def working_day_on_or_before(day: date) -> date:
    while not is_working_day(day):
        day -= timedelta(days=1)
    return day


def _working_days(start: date, end: date) -> list[date]:
    days = []
    while start <= end:
        if is_working_day(start):
            days.append(start)
        start += timedelta(days=1)
    return days


def routes(config: SandboxConfig, gate: Gate) -> list[Route]:
    def today() -> date:
        return config.date_of(config.day)

    def rates_of(base: str, day: date) -> dict[str, float]:
        codes = config.examples.currencies
        return {c: rate(config.seed, base, c, day) for c in codes if c != base}

    async def currencies(request: Request) -> Response:
        async def answer() -> Response:
            return json_response(dict(sorted(config.examples.currencies.items())))

        return await gate("frankfurter.currencies", FRANKFURTER, authorized=True, answer=answer)

    async def rates(request: Request) -> Response:
        async def answer() -> Response:
            base = request.query_params.get("base", "EUR").upper()
            if base not in config.examples.currencies:
                return FRANKFURTER.error(404, f"unknown base currency {base}")
            period = request.path_params["period"]
            if period == "latest":
                period = today().isoformat()
            first, _, last = period.partition("..")
            try:
                start = date.fromisoformat(first)
                end = date.fromisoformat(last) if last else start
            except ValueError:
                return FRANKFURTER.error(400, "dates are YYYY-MM-DD, ranges YYYY-MM-DD..YYYY-MM-DD")
            if (end - start).days > _MAX_DAYS:
                return FRANKFURTER.error(400, f"a range spans at most {_MAX_DAYS} days")
            if not last:  # one day: the working day on or before it
                if start > today():
                    return FRANKFURTER.error(404, "not found")
                start = working_day_on_or_before(start)
                return json_response(
                    {
                        "amount": 1.0,
                        "base": base,
                        "date": start.isoformat(),
                        "rates": rates_of(base, start),
                    }
                )
            # From the latest day with rates on or before `start`, as the real API queries.
            if start <= today():
                start = working_day_on_or_before(start)
            days = _working_days(start, min(end, today()))
            return json_response(
                {
                    "amount": 1.0,
                    "base": base,
                    "start_date": (days[0] if days else start).isoformat(),
                    "end_date": (days[-1] if days else end).isoformat(),
                    "rates": {d.isoformat(): rates_of(base, d) for d in days},
                }
            )

        return await gate("frankfurter.rates", FRANKFURTER, authorized=True, answer=answer)

    return [
        Route("/frankfurter/v1/currencies", currencies, methods=["GET"]),
        Route("/frankfurter/v1/{period}", rates, methods=["GET"]),
    ]
