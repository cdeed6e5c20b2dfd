"""Monthly NYC yellow-taxi trip files (seed 004), generated with the TLC's real columns.

    GET /trip-data/yellow_tripdata_{YYYY}-{MM}.parquet     (row groups of 100,000 rows)
    GET /trip-data/yellow_tripdata_{YYYY}-{MM}.csv         (only with `taxi_csv`)

A month has `taxi_rows` trips, a deterministic function of (seed, year, month): the CSV and the
Parquet file of a month hold the same trips. A Parquet file is written once per (month, rows)
into a temporary folder and served from there; a CSV is generated as it is sent.

As the TLC's bucket (d37ci6vzurychx.cloudfront.net) does, a file that is not there answers
403 AccessDenied, not 404 (the bucket may not be listed, so it does not tell a missing key from
a forbidden one): a month before 2009-01 or not published yet (a month is published on the first
day of the second month after it: 2026-03 on 2026-05-01, the sandbox's date), and every CSV
file, since the TLC publishes Parquet only (2022). `taxi_csv` serves CSV files too, as a local
mirror of the old CSV files would.
"""

from __future__ import annotations

import atexit
import calendar
import csv
import io
import random
import shutil
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from dataload.sandbox.config import SandboxConfig
from dataload.sandbox.gate import Gate
from dataload.sandbox.systems import System

__all__ = ["COLUMNS", "TAXI", "columns_of", "routes", "trip_columns", "write_parquet"]

TAXI = System("taxi", b"PAR1\x15\x04", None)
CHUNK = 100_000
#: The yellow-taxi columns, in the TLC's order, with their Parquet types.
COLUMNS = (
    ("VendorID", "int32"),
    ("tpep_pickup_datetime", "timestamp"),
    ("tpep_dropoff_datetime", "timestamp"),
    ("passenger_count", "int64"),
    ("trip_distance", "double"),
    ("RatecodeID", "int64"),
    ("store_and_fwd_flag", "string"),
    ("PULocationID", "int32"),
    ("DOLocationID", "int32"),
    ("payment_type", "int64"),
    ("fare_amount", "double"),
    ("extra", "double"),
    ("mta_tax", "double"),
    ("tip_amount", "double"),
    ("tolls_amount", "double"),
    ("improvement_surcharge", "double"),
    ("total_amount", "double"),
    ("congestion_surcharge", "double"),
    ("Airport_fee", "double"),
)


def _access_denied() -> Response:
    return Response(
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
        403,
        media_type="application/xml",
    )


def trip_columns(seed: int, year: int, month: int, start: int, count: int) -> dict[str, list]:
    """Trips start .. start+count-1 of a month, column by column."""
    rng = random.Random(seed * 1_000_003 + year * 100 + month + start * 7919)
    month_s = calendar.monthrange(year, month)[1] * 86400
    first = datetime(year, month, 1)
    cols: dict[str, list] = {name: [] for name, _ in COLUMNS}
    for _ in range(count):
        pickup = first + timedelta(seconds=int(rng.random() * month_s))
        minutes = 3 + rng.expovariate(1 / 12)
        distance = round(0.3 + minutes * (0.15 + rng.random() * 0.25), 2)
        fare = round(3 + distance * 2.5 + minutes * 0.5, 2)
        card = rng.random() < 0.75
        tip = round(fare * rng.choice((0.1, 0.15, 0.2, 0.25)), 2) if card else 0.0
        tolls = 6.94 if rng.random() < 0.05 else 0.0
        airport = 1.75 if rng.random() < 0.08 else 0.0
        cols["VendorID"].append(1 if rng.random() < 0.3 else 2)
        cols["tpep_pickup_datetime"].append(pickup)
        cols["tpep_dropoff_datetime"].append(pickup + timedelta(seconds=int(minutes * 60)))
        cols["passenger_count"].append(None if rng.random() < 0.03 else 1 + int(rng.random() * 4))
        cols["trip_distance"].append(distance)
        cols["RatecodeID"].append(2 if airport and rng.random() < 0.5 else 1)
        cols["store_and_fwd_flag"].append("Y" if rng.random() < 0.01 else "N")
        cols["PULocationID"].append(1 + int(rng.random() * 263))
        cols["DOLocationID"].append(1 + int(rng.random() * 263))
        cols["payment_type"].append(1 if card else 2)
        cols["fare_amount"].append(fare)
        cols["extra"].append(rng.choice((0.0, 1.0, 2.5)))
        cols["mta_tax"].append(0.5)
        cols["tip_amount"].append(tip)
        cols["tolls_amount"].append(tolls)
        cols["improvement_surcharge"].append(1.0)
        cols["total_amount"].append(round(fare + tip + tolls + airport + 1.5 + 2.5, 2))
        cols["congestion_surcharge"].append(2.5)
        cols["Airport_fee"].append(airport)
    return cols


def columns_of(year: int) -> list[tuple[str, str]]:
    """The columns of a year's files, as the TLC changed them: 2023 spells `airport_fee`; 2025
    adds `cbd_congestion_fee` (the congestion pricing toll) and widens VendorID to 64 bits and
    the flag to a large string."""
    columns = list(COLUMNS)
    if year <= 2023:
        columns[-1] = ("airport_fee", "double")
    if year >= 2025:
        columns[0] = ("VendorID", "int64")
        columns[6] = ("store_and_fwd_flag", "large_string")
        columns.append(("cbd_congestion_fee", "double"))
    return columns


def _year_columns(cols: dict[str, list], year: int, rng_seed: int) -> dict[str, list]:
    """trip_columns' columns renamed and extended as the year's files have them."""
    if year <= 2023:
        cols["airport_fee"] = cols.pop("Airport_fee")
    if year >= 2025:
        rng = random.Random(rng_seed)
        cols["cbd_congestion_fee"] = [0.75 if rng.random() < 0.3 else 0.0 for _ in cols["VendorID"]]
    return cols


def _chunks(rows: int) -> Iterator[tuple[int, int]]:
    for start in range(0, rows, CHUNK):
        yield start, min(CHUNK, rows - start)


def write_parquet(path: Path, seed: int, year: int, month: int, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {
        "int32": pa.int32(),
        "int64": pa.int64(),
        "double": pa.float64(),
        "string": pa.string(),
        "large_string": pa.large_string(),
        "timestamp": pa.timestamp("us"),
    }
    schema = pa.schema([(name, types[kind]) for name, kind in columns_of(year)])
    with pq.ParquetWriter(path, schema) as writer:
        for start, count in _chunks(rows):
            cols = _year_columns(trip_columns(seed, year, month, start, count), year, start)
            writer.write_table(pa.table(cols, schema=schema))


def _csv(seed: int, year: int, month: int, rows: int) -> Iterator[bytes]:
    names = [name for name, _ in columns_of(year)]
    header = io.StringIO()
    csv.writer(header).writerow(names)
    yield header.getvalue().encode()
    for start, count in _chunks(rows):
        cols = _year_columns(trip_columns(seed, year, month, start, count), year, start)
        out = io.StringIO()
        writer = csv.writer(out)
        for i in range(count):
            writer.writerow(
                [
                    ""
                    if (v := cols[n][i]) is None
                    else v.isoformat(sep=" ")
                    if isinstance(v, datetime)
                    else v
                    for n in names
                ]
            )
        yield out.getvalue().encode()


def routes(config: SandboxConfig, gate: Gate) -> list[Route]:
    folders: list[Path] = []
    lock = threading.Lock()

    def parquet_file(year: int, month: int) -> Path:
        rows = config.examples.taxi_rows
        with lock:
            if not folders:  # made on first use, removed when the process ends
                folders.append(Path(tempfile.mkdtemp(prefix="dataload-sandbox-taxi-")))
                atexit.register(shutil.rmtree, folders[0], ignore_errors=True)
            path = folders[0] / f"{config.seed}-{year}-{month:02d}-{rows}.parquet"
            if not path.exists():
                partial = path.with_suffix(".part")
                write_parquet(partial, config.seed, year, month, rows)
                partial.replace(path)
        return path

    def published(year: int, month: int) -> bool:
        """Whether the month's file is out by the sandbox's date: from 2009-01, each month on
        the first day of the second month after it."""
        today = config.date_of(config.day)
        return (2009, 1) <= (year, month) and year * 12 + month + 2 <= today.year * 12 + today.month

    async def trip_file(request: Request) -> Response:
        async def answer() -> Response:
            name = request.path_params["name"]
            stem, _, ext = name.rpartition(".")
            try:
                kind, _, period = stem.rpartition("_")
                year, month = (int(x) for x in period.split("-"))
                if (
                    kind != "yellow_tripdata"
                    or not 1 <= month <= 12
                    or ext not in ("csv", "parquet")
                ):
                    raise ValueError
            except ValueError:
                return _access_denied()
            if not published(year, month) or (ext == "csv" and not config.examples.taxi_csv):
                return _access_denied()
            if ext == "csv":
                return StreamingResponse(
                    _csv(config.seed, year, month, config.examples.taxi_rows),
                    media_type="text/csv",
                )
            import anyio.to_thread

            path = await anyio.to_thread.run_sync(parquet_file, year, month)
            return FileResponse(path, media_type="application/octet-stream")

        return await gate("taxi.file", TAXI, authorized=True, answer=answer)

    return [Route("/trip-data/{name}", trip_file, methods=["GET"])]
