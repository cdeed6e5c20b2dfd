"""A client of the Frankfurter exchange-rate API (seed 002): currencies and daily rates.

`FRANKFURTER_URL` (default https://api.frankfurter.dev/v1) names the service. Transient
failures (connection errors, timeouts, 5xx, 429) are retried by the shared policy: exponential
backoff with full jitter, a bounded number of attempts (`DATALOAD_SOURCE_MAX_ATTEMPTS`).
"""

from __future__ import annotations

from datetime import date

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dataload.examples.public_api import PublicApi

__all__ = ["Frankfurter", "FrankfurterSettings"]


class FrankfurterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    url: str = Field("https://api.frankfurter.dev/v1", alias="FRANKFURTER_URL")


class Frankfurter(PublicApi):
    source = "Frankfurter API"
    url_variable = "FRANKFURTER_URL"
    settings_type = FrankfurterSettings
    read_timeout_s = 60.0
    max_connections = 4

    async def currencies(self) -> dict[str, str]:
        """ISO code -> name of every currency the API knows."""
        url = f"{self.url}/currencies"
        body = await self._http.request_json("GET", url)
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            raise self._http.shape_error(url, "answered something else than {code: name}")
        return body

    async def latest_date(self) -> date:
        """The last day the API has rates for."""
        url = f"{self.url}/latest"
        body = await self._http.request_json("GET", url)
        try:
            return date.fromisoformat(body["date"])
        except (TypeError, KeyError, ValueError):
            raise self._http.shape_error(url, "answered without a date") from None

    async def rates(self, base: str, start: date, end: date) -> dict[str, dict[str, float]]:
        """Date (YYYY-MM-DD) -> {currency: units per one `base`} for the working days in
        [start, end] that have rates, and no other day.

        The API answers a range from the latest day with rates on or before `start` (a range
        from Saturday, or from the 1 January holiday, begins on the working day before it), so
        the days before `start` it adds are dropped here: consecutive ranges never yield a day
        twice, and a backfill never yields a day outside the range asked for."""
        url = f"{self.url}/{start.isoformat()}..{end.isoformat()}"
        body = await self._http.request_json("GET", url, params={"base": base})
        rates = body.get("rates") if isinstance(body, dict) else None
        if not isinstance(rates, dict) or not all(isinstance(v, dict) for v in rates.values()):
            raise self._http.shape_error(url, "answered without a rates object per date")
        inside = {}
        for day, day_rates in rates.items():
            try:
                when = date.fromisoformat(day)
            except (TypeError, ValueError):
                raise self._http.shape_error(
                    url, f"answered a rate for {day!r}, not a date"
                ) from None
            if start <= when <= end:
                inside[when.isoformat()] = day_rates
        return inside
