"""taxi_trips (seed 004): a month of NYC yellow-taxi trips, from its Parquet or CSV file.

`--param year=2024 --param month=1 [--param format=csv]` loads one month; the download is a
Prefect task cached by its inputs (URL and folder: `TAXI_DOWNLOAD_DIR`, by default
`DATALOAD_HOME/downloads/taxi`), so a rerun
of the same month reads the file it already has. The file is read in record batches of
`chunk_rows` (Parquet row groups, CSV blocks) and loaded as it is read: memory stays flat
whatever the month's size. Each trip's key is (year_month, trip): its row number in the month's
file. A month is a scoped snapshot: reloading it replaces that month, and only that month.
`TAXI_URL` defaults to the TLC's public bucket.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dataload.domains import DomainSpec, Guards, Key, Listing, Records, Schedule
from dataload.domains.tasks import lazy_task
from dataload.examples.public_api import PublicApi

if TYPE_CHECKING:
    import pyarrow as pa

    from dataload.flows.domain import DomainRun

__all__ = ["DOMAIN", "TaxiFiles", "TripParams", "read_trips"]


class TaxiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    url: str = Field("https://d37ci6vzurychx.cloudfront.net/trip-data", alias="TAXI_URL")
    #: Where downloaded files are kept (default: DATALOAD_HOME/downloads/taxi).
    download_dir: Path | None = Field(None, alias="TAXI_DOWNLOAD_DIR")


def _two_months_ago() -> datetime:
    # The TLC publishes a month's trips about two months after it ends.
    return (datetime.now(UTC).replace(day=1) - timedelta(days=32)).replace(day=1)


class TripParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    year: int = Field(default_factory=lambda: _two_months_ago().year, ge=2009, le=2100)
    month: int = Field(default_factory=lambda: _two_months_ago().month, ge=1, le=12)
    format: Literal["parquet", "csv"] = "parquet"
    chunk_rows: int = Field(20_000, ge=100, le=1_000_000)

    @property
    def year_month(self) -> str:
        return f"{self.year}-{self.month:02d}"

    @property
    def file_name(self) -> str:
        return f"yellow_tripdata_{self.year_month}.{self.format}"


class TaxiFiles(PublicApi):
    source = "TLC trip files"
    url_variable = "TAXI_URL"
    settings_type = TaxiSettings
    read_timeout_s = 300.0
    max_connections = 1

    async def download(self, name: str, dest: Path) -> int:
        return await self._http.download(f"{self.url}/{name}", dest)

    def missing(self, url: str) -> str | None:
        # The bucket may not be listed, so it answers 403 (not 404) for a file it does not
        # have: a month not published yet, or a CSV file (Parquet only since 2022).
        name = url.rpartition("/")[2]
        stem, _, ext = name.rpartition(".")
        if ext == "csv":
            return (
                f"{name} is not offered: the TLC publishes trip files as Parquet only (its CSV "
                "files were withdrawn in 2022); load the month with --param format=parquet, or "
                "point TAXI_URL at a mirror that serves CSV"
            )
        month = stem.rpartition("_")[2]
        return (
            f"the month {month} is not published (the TLC publishes a month's trips about two "
            "months after it ends, from 2009-01 on); choose an earlier month, or check TAXI_URL"
        )


@lazy_task("download-trip-file", cache_inputs_except=("files",))
async def download_trip_file(files: TaxiFiles, url: str, name: str, folder: str) -> str:
    """Download one month's file into `folder`; returns its path. Cached by (url, name,
    folder): a rerun finds the path without downloading."""
    # The URL is part of the file name: two sources never share a cached file.
    dest = Path(folder) / f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{name}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    await files.download(name, dest)
    return str(dest)


def _record_batches(path: Path, kind: str, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    if kind == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetFile(path) as parquet:
            yield from parquet.iter_batches(batch_size=chunk_rows)
        return
    import pyarrow.csv as pcsv

    # About chunk_rows rows per block (a trip is ~150 bytes of CSV).
    options = pcsv.ReadOptions(block_size=max(1 << 16, chunk_rows * 160))
    with pcsv.open_csv(path, read_options=options) as reader:
        yield from reader


def read_trips(path: Path, kind: str, year_month: str, chunk_rows: int) -> Iterator[list[dict]]:
    """The file's trips as lists of records, batch by batch: timestamps as ISO text, each
    with its year_month and its row number (`trip`, from 1)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    trip = 0
    for batch in _record_batches(path, kind, chunk_rows):
        # One notation whatever the file: Parquet has microseconds, CSV seconds.
        columns = [
            pc.strftime(column.cast(pa.timestamp("s"), safe=False), "%Y-%m-%dT%H:%M:%S")
            if pa.types.is_timestamp(column.type)
            else column
            for column in batch.columns
        ]
        rows = pa.RecordBatch.from_arrays(columns, names=batch.schema.names).to_pylist()
        for row in rows:
            trip += 1
            row["year_month"] = year_month
            row["trip"] = trip
        yield rows


async def taxi_trips(run: DomainRun) -> AsyncIterator[Records]:
    import asyncio

    params = run.typed_params(TripParams)
    files = await run.client(TaxiFiles)
    folder = str(TaxiSettings().download_dir or run.settings.home / "downloads" / "taxi")
    path = Path(await download_trip_file(files, files.url, params.file_name, folder))
    if not await asyncio.to_thread(path.exists):  # cached, but removed since: fetch it again
        path = Path(await download_trip_file.refreshing(files, files.url, params.file_name, folder))
    run.note("file bytes", (await asyncio.to_thread(path.stat)).st_size)
    run.scope = {"year_month": [params.year_month]}
    batches = read_trips(path, params.format, params.year_month, params.chunk_rows)
    while (rows := await asyncio.to_thread(next, batches, None)) is not None:
        yield rows


DOMAIN = DomainSpec(
    name="taxi_trips",
    description="NYC yellow-taxi trips, a month at a time, from the TLC's Parquet or CSV files.",
    keys=(Key("year_month"), Key("trip", "bigint")),
    listing=Listing.SCOPED,
    source=taxi_trips,
    source_label="TLC trip-data files (Parquet or CSV), per month",
    params=TripParams,
    schedules=(
        Schedule(
            "monthly",
            cron="0 4 5 * *",
            description="On the 5th at 04:00 UTC, the month published last.",
        ),
    ),
    tags=("source:tlc", "seed:004"),
    guards=Guards(min_records=1),
)
