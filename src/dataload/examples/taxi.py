"""taxi_trips (seed 004): a month of NYC yellow-taxi trips, from its Parquet or CSV file.

A tabular domain of facts (domains/table.py): trips have no key, so the month is the unit. A
load of a month is one version of it, COPYed from the file's Arrow record batches into the
month's partition; an identical file (the same bytes: its sha256 is the month's content hash)
stores nothing, and a revised file replaces its month atomically when the run finishes, the
previous version staying in raw as history (`dataload history taxi_trips 2024-01`). Other
months are never touched.

`--param year=2024 --param month=1 [--param format=csv]` loads one month; the download is a
Prefect task cached by its inputs (URL and folder: `TAXI_DOWNLOAD_DIR`, by default
`DATALOAD_HOME/downloads/taxi`), so a rerun of the same month reads the file it already has.
The file is read in record batches of `chunk_rows`: memory stays flat whatever the month's
size. A CSV is read as text and cast to the declared types, so that a bad cell rejects its row
instead of turning its column into text. The TLC's columns changed over the years (2023's
`airport_fee` is 2024's `Airport_fee`; 2025 added `cbd_congestion_fee` and widened some types):
names match without regard to case, a new column is added and named in the run's summary.
`TAXI_URL` defaults to the TLC's public bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dataload.domains import DomainSpec, Guards, Listing, Records, Schedule
from dataload.domains.table import Column, ColumnService, Table
from dataload.domains.tasks import lazy_task
from dataload.examples.public_api import PublicApi

if TYPE_CHECKING:
    import pyarrow as pa

    from dataload.flows.domain import DomainRun
    from dataload.lake import RunSummary
    from dataload.settings import Settings

__all__ = [
    "DOMAIN",
    "TRIPS",
    "TaxiFiles",
    "TripParams",
    "load_trip_file",
    "read_trips",
    "trip_batches",
]


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
    chunk_rows: int = Field(100_000, ge=100, le=1_000_000)

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


def read_trips(path: Path, kind: str, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """The file's trips as Arrow record batches of about `chunk_rows` rows. A CSV's columns
    are read as text: the lake casts them to the table's types, one bad cell one rejected row."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        # Without pre-buffering, a row group's columns are read as they are decoded, not all
        # at once: a 3,000,000-trip month peaks ~70 MB lower, at the same speed.
        with pq.ParquetFile(path, pre_buffer=False) as parquet:
            yield from parquet.iter_batches(batch_size=chunk_rows)
        return
    import pyarrow as pa
    import pyarrow.csv as pcsv

    with path.open(newline="", encoding="utf-8") as file:
        header = next(csv.reader(file), [])
    # About chunk_rows rows per block (a trip is ~150 bytes of CSV).
    with pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=max(1 << 16, chunk_rows * 160)),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in header}, strings_can_be_null=True
        ),
    ) as reader:
        yield from reader


def content_hash(path: Path) -> str:
    """What identifies a month's file: the sha256 of its bytes."""
    with path.open("rb") as file:
        return "sha256:" + hashlib.file_digest(file, "sha256").hexdigest()


async def stream_trips(run: DomainRun, path: Path, params: TripParams) -> AsyncIterator[Records]:
    """Name the month and its file's hash, then yield the file's batches as they are read."""
    run.scope = {"year_month": [params.year_month]}
    run.content_hash = await asyncio.to_thread(content_hash, path)
    async for batch in trip_batches(path, params.format, params.chunk_rows):
        yield batch


async def trip_batches(path: Path, kind: str, chunk_rows: int) -> AsyncIterator[pa.RecordBatch]:
    """read_trips, each batch read in a thread: the event loop stays free meanwhile."""
    batches = read_trips(path, kind, chunk_rows)
    while (batch := await asyncio.to_thread(next, batches, None)) is not None:
        yield batch


async def taxi_trips(run: DomainRun) -> AsyncIterator[Records]:
    params = run.typed_params(TripParams)
    files = await run.client(TaxiFiles)
    folder = str(TaxiSettings().download_dir or run.settings.home / "downloads" / "taxi")
    path = Path(await download_trip_file(files, files.url, params.file_name, folder))
    if not await asyncio.to_thread(path.exists):  # cached, but removed since: fetch it again
        path = Path(await download_trip_file.refreshing(files, files.url, params.file_name, folder))
    run.note("file bytes", (await asyncio.to_thread(path.stat)).st_size)
    async for batch in stream_trips(run, path, params):
        yield batch


def _money(name: str) -> Column:
    return Column(name, "double precision")


#: The TLC's yellow-taxi columns (2024), with names for SQL users; the TLC's own names match.
TRIPS = Table(
    columns=(
        Column("year_month", "text"),
        Column("vendor_id", "integer", source=("VendorID",)),
        Column("tpep_pickup_datetime", "timestamp"),
        Column("tpep_dropoff_datetime", "timestamp"),
        Column("passenger_count", "bigint"),
        Column("trip_distance", "double precision"),
        Column("ratecode_id", "bigint", source=("RatecodeID",)),
        Column("store_and_fwd_flag", "text"),
        Column("pu_location_id", "integer", source=("PULocationID",)),
        Column("do_location_id", "integer", source=("DOLocationID",)),
        Column("payment_type", "bigint"),
        *(
            _money(name)
            for name in (
                "fare_amount",
                "extra",
                "mta_tax",
                "tip_amount",
                "tolls_amount",
                "improvement_surcharge",
                "total_amount",
                "congestion_surcharge",
                "airport_fee",
            )
        ),
    ),
    scope="year_month",
    services={
        # What a fare analysis needs, without locations.
        "fares": ColumnService(
            (
                "year_month",
                "tpep_pickup_datetime",
                "trip_distance",
                "payment_type",
                "fare_amount",
                "tip_amount",
                "total_amount",
            )
        ),
        # Card payments only (tips are recorded for card payments alone).
        "card_tips": ColumnService(
            ("year_month", "tpep_pickup_datetime", "fare_amount", "tip_amount"),
            where="payment_type = 1",
        ),
    },
)


async def load_trip_file(settings: Settings, path: Path, *, year: int, month: int) -> RunSummary:
    """Load one month's file into the lake as one run, without Prefect (the benchmark's way in;
    a flow run does the same through `taxi_trips`)."""
    from dataload.lake import Lake, LakeError
    from dataload.lake.db import create_pool, dsn, prepare_lake
    from dataload.lake.tables import TableLoad

    params = TripParams(year=year, month=month, format=path.suffix.lstrip("."))  # type: ignore[arg-type]
    # Hashed while the lake is opened: the file is read once more only if it is new.
    digest = asyncio.ensure_future(asyncio.to_thread(content_hash, path))
    await prepare_lake(settings, [DOMAIN.tables()])
    pool = await create_pool(settings, loader=True)  # loaded as a flow run loads it
    try:
        run = await Lake(pool).start_run(DOMAIN.name, flow="load_trip_file")
        try:
            scope = params.year_month
            load = TableLoad(run, dsn(settings, loader=True), declared=TRIPS)
            batches = trip_batches(path, params.format, params.chunk_rows)
            await load.load_facts(scope, await digest, batches)
            await load.record_schema_changes()
            return await run.finish(complete=True, scope={"year_month": [scope]})
        except BaseException as exc:
            with contextlib.suppress(LakeError):  # a run that finished stays as it ended
                await run.fail(f"load_trip_file stopped: {exc!r}"[:300])
            raise
    finally:
        await pool.close()


DOMAIN = DomainSpec(
    name="taxi_trips",
    description="NYC yellow-taxi trips, a month at a time, from the TLC's Parquet or CSV files.",
    keys=(),
    table=TRIPS,
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
