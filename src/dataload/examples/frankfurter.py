"""A client of the Frankfurter exchange-rate API (seed 002): currencies and daily rates.

`FRANKFURTER_URL` (default https://api.frankfurter.dev/v1) names the service. Transient
failures (connection errors, timeouts, 5xx, 429) are retried by the shared policy: exponential
backoff with full jitter, a bounded number of attempts (`DATALOAD_SOURCE_MAX_ATTEMPTS`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dataload.settings import Settings
from dataload.sources.http import SourceClient, SourceHttp, require_url, timeouts
from dataload.sources.retry import RetryPolicy

__all__ = ["Frankfurter", "FrankfurterSettings"]


class FrankfurterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    url: str = Field("https://api.frankfurter.dev/v1", alias="FRANKFURTER_URL")


class Frankfurter(SourceClient):
    def __init__(
        self,
        *,
        url: str,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = require_url(url, "FRANKFURTER_URL")
        self._http = SourceHttp(
            source="Frankfurter API",
            url_variable="FRANKFURTER_URL",
            credential_variables="FRANKFURTER_URL (the API takes no key)",
            auth=None,
            timeout=timeouts(read=60.0),
            retry=retry or RetryPolicy(),
            max_connections=4,
            transport=transport,
        )

    @classmethod
    def settings_options(cls, settings: Settings) -> dict[str, Any]:
        return {"url": FrankfurterSettings().url}

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
        [start, end] that have rates."""
        url = f"{self.url}/{start.isoformat()}..{end.isoformat()}"
        body = await self._http.request_json("GET", url, params={"base": base})
        rates = body.get("rates") if isinstance(body, dict) else None
        if not isinstance(rates, dict) or not all(isinstance(v, dict) for v in rates.values()):
            raise self._http.shape_error(url, "answered without a rates object per date")
        return rates
