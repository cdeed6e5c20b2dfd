"""exchange_rates (seed 002): daily rates per base currency, incremental by date.

A keyed table (domains/table.py): one row per (base, date, currency) with its rate, the shape a
rate is looked up and joined by. A rate the API revises is a new version of its row; a day
offered twice with the same rates (a chunk boundary) is stored once.
A run continues after the cursor (the last date a finished run loaded, kept in lake.cursors)
up to the API's latest day; the first run starts at `EXCHANGE_RATES_START`. `--param start=YYYY-MM-DD
--param end=YYYY-MM-DD` backfills a range instead; either way the range is asked for in chunks
of `chunk_days`. `--full-refresh` reloads everything from `EXCHANGE_RATES_START` and, being a
complete snapshot, deletes what the API no longer has. Incremental runs never delete.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dataload.domains import DomainSpec, Listing, Records, Schedule
from dataload.domains.table import Column, ColumnService, Table
from dataload.examples.frankfurter import Frankfurter

if TYPE_CHECKING:
    from dataload.flows.domain import DomainRun

__all__ = ["DOMAIN", "RateParams", "date_chunks"]


class RateSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    start: date = Field(date(2026, 1, 1), alias="EXCHANGE_RATES_START")
    bases: str = Field("EUR,USD", alias="EXCHANGE_RATES_BASES")


class RateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: date | None = None  # a backfill's first day
    end: date | None = None  # a backfill's last day (default: today)
    bases: str | None = None  # comma-separated base currencies (default: EXCHANGE_RATES_BASES)
    chunk_days: int = Field(31, ge=1, le=366)

    @model_validator(mode="after")
    def _ordered(self) -> RateParams:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


def date_chunks(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """[start, end] cut into consecutive ranges of at most `days` days."""
    chunks = []
    while start <= end:
        last = min(end, start + timedelta(days=days - 1))
        chunks.append((start, last))
        start = last + timedelta(days=1)
    return chunks


def _range(run: DomainRun, params: RateParams, settings: RateSettings, latest: date):
    """The days to ask for: a backfill's range, else from after the cursor (or from the
    configured start) to the API's latest day."""
    end = min(params.end or latest, latest)
    if params.start is not None:
        return params.start, end
    if run.cursor is not None:
        return date.fromisoformat(run.cursor) + timedelta(days=1), end
    return settings.start, end


async def exchange_rates(run: DomainRun) -> AsyncIterator[Records]:
    params = run.typed_params(RateParams)
    settings = RateSettings()
    bases = [b.strip().upper() for b in (params.bases or settings.bases).split(",") if b.strip()]
    api = await run.client(Frankfurter)
    start, end = _range(run, params, settings, await api.latest_date())
    chunks = date_chunks(start, end, params.chunk_days)
    run.note("chunks", len(chunks) * len(bases))
    days = 0
    for first, last in chunks:
        for base in bases:
            rates = await api.rates(base, first, last)
            days += len(rates)
            yield [
                {"base": base, "date": day, "currency": currency, "rate": rate}
                for day, day_rates in rates.items()
                for currency, rate in day_rates.items()
            ]
            if rates:
                run.advance(max(rates))
    run.note("days with rates", days)


DOMAIN = DomainSpec(
    name="exchange_rates",
    description="Daily exchange rates per base currency from a Frankfurter-style API.",
    keys=(),
    table=Table(
        columns=(
            Column("base", "text"),
            Column("date", "date"),
            Column("currency", "text"),
            Column("rate", "double precision", required=True),
        ),
        key=("base", "date", "currency"),
        services={
            # What a US finance office reads: dollar rates only.
            "usd_rates": ColumnService(("date", "currency", "rate"), where="base = 'USD'"),
        },
    ),
    listing=Listing.INCREMENTAL,
    source=exchange_rates,
    source_label="Frankfurter API /{start}..{end}",
    params=RateParams,
    full_refresh=True,
    schedules=(Schedule("daily", cron="0 9 * * *", description="Daily at 09:00 UTC."),),
    tags=("source:frankfurter", "seed:002"),
)
