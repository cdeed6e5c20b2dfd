"""A Frankfurter-style exchange-rate API (https://api.frankfurter.dev/v1), as seed 002 uses it.

    GET /frankfurter/v1/{start}..{end}?base=EUR   working days' rates in the range
    GET /frankfurter/v1/{date}?base=EUR           one day (the working day on or before it)
    GET /frankfurter/v1/latest?base=EUR           the last working day's rates
    GET /frankfurter/v1/currencies                code -> name

Rates are a deterministic function of (seed, base, currency, date); the sandbox's "today" is the
calendar date of its current day, and no rate exists after it (a range is cut there), as the
real API has none for the future. Weekends have no rates.
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

__all__ = ["FRANKFURTER", "rate", "routes"]

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


def _working_days(start: date, end: date) -> list[date]:
    days = []
    while start <= end:
        if start.weekday() < 5:
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
            end = min(end, today())
            if not last:  # one day: the working day on or before it
                while start.weekday() >= 5:
                    start -= timedelta(days=1)
                return json_response(
                    {
                        "amount": 1.0,
                        "base": base,
                        "date": start.isoformat(),
                        "rates": rates_of(base, start),
                    }
                )
            days = _working_days(start, end)
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
