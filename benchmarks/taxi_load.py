"""Benchmark of the taxi_trips domain: a month's Parquet file streamed into the lake, against a
plain COPY of the same rows, with the loader's peak RSS.

    uv run python benchmarks/taxi_load.py [--rows 1000000] [--small 100000] [--batch 1000]

Runs against the server POSTGRES_* names (or the embedded one), in a database of its own that
it drops at the end. The month's file is the sandbox's (the TLC's 19 yellow-taxi columns),
written once to a temporary folder; the download itself is not timed.

Workloads, each timed from the Parquet file to committed rows, in this process:
- plain COPY: the file read in record batches, each row serialised to JSON and COPYed into a bare
  table (year_month, trip, data jsonb): the physical limit of moving these rows;
- ours: the domain's reader (`read_trips`) into a lake run, in lake batches of --batch, two in
  flight, three layers propagated, then the month-scoped finish: what `dataload run taxi_trips`
  does after its download.
Peak RSS is sampled every 20 ms during each workload; ours also runs at --small rows first, so
that the two peaks show whether memory grows with the month's size.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import psutil

from dataload.examples.taxi import DOMAIN, read_trips
from dataload.lake import Lake, db, init_lake
from dataload.sandbox.examples.taxi import write_parquet
from dataload.settings import Settings

YEAR, MONTH, CHUNK = 2024, 1, 20_000


class PeakRss:
    """The process's peak resident memory while the block runs, sampled in a thread."""

    def __enter__(self) -> PeakRss:
        self.peak = 0
        self._stop = threading.Event()
        self._process = psutil.Process()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(0.02)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


async def plain_copy(settings: Settings, path: Path, rows: int) -> None:
    conn = await db.connect(settings)
    try:
        table = f"copy_{uuid.uuid4().hex[:8]}"
        await conn.execute(f"CREATE TABLE {table} (year_month text, trip bigint, data jsonb)")
        for batch in read_trips(path, "parquet", f"{YEAR}-{MONTH:02d}", CHUNK):
            await conn.copy_records_to_table(
                table,
                records=[(r["year_month"], r["trip"], orjson.dumps(r).decode()) for r in batch],
                columns=["year_month", "trip", "data"],
            )
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == rows
        await conn.execute(f"DROP TABLE {table}")
    finally:
        await conn.close()


async def ours(settings: Settings, path: Path, rows: int, batch_size: int) -> None:
    pool = await db.create_pool(settings, min_size=2, max_size=4)
    try:
        run = await Lake(pool).start_run("taxi_trips")

        async def batches() -> AsyncIterator[list[dict[str, Any]]]:
            reader = read_trips(path, "parquet", f"{YEAR}-{MONTH:02d}", CHUNK)
            while (chunk := await asyncio.to_thread(next, reader, None)) is not None:
                it = iter(chunk)
                while batch := list(islice(it, batch_size)):
                    yield batch

        await run.load_stream(batches(), concurrency=2)
        summary = await run.finish(complete=True, scope={"year_month": [f"{YEAR}-{MONTH:02d}"]})
        assert summary.offered == rows, summary
    finally:
        await pool.close()


async def fresh_lake(settings: Settings) -> None:
    await db.recreate_database(settings)
    conn = await db.connect(settings)
    try:
        await init_lake(conn, [DOMAIN.tables()])
    finally:
        await conn.close()


async def timed(work: Callable[[], Awaitable[None]]) -> tuple[float, int]:
    with PeakRss() as rss:
        started = time.perf_counter()
        await work()
        elapsed = time.perf_counter() - started
    return elapsed, rss.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    base = Settings()
    settings = base.model_copy(update={"postgres_db": f"dataload_bench_{uuid.uuid4().hex[:8]}"})
    results: list[tuple[str, int, float, int]] = []
    with tempfile.TemporaryDirectory(prefix="dataload-taxi-bench-") as folder:
        try:
            for rows in (args.small, args.rows):
                path = Path(folder) / f"yellow_tripdata_{rows}.parquet"
                write_parquet(path, 42, YEAR, MONTH, rows)
                asyncio.run(fresh_lake(settings))
                elapsed, peak = asyncio.run(
                    timed(lambda p=path, n=rows: plain_copy(settings, p, n))
                )
                results.append(("plain COPY (jsonb)", rows, elapsed, peak))
                elapsed, peak = asyncio.run(
                    timed(lambda p=path, n=rows: ours(settings, p, n, args.batch))
                )
                results.append(("ours: taxi_trips into the lake", rows, elapsed, peak))
        finally:
            asyncio.run(db.drop_database(settings))
    copy_rate = {rows: rows / t for name, rows, t, _ in results if name.startswith("plain")}
    print(
        f"\n{'workload':<34}{'rows':>11}{'time (s)':>10}{'rows/s':>10}{'vs COPY':>9}{'peak RSS':>11}"
    )
    for name, rows, elapsed, peak in results:
        rate = rows / elapsed
        print(
            f"{name:<34}{rows:>11,}{elapsed:>10.1f}{rate:>10,.0f}"
            f"{rate / copy_rate[rows]:>9.2f}{peak / 2**20:>8.0f} MB"
        )


if __name__ == "__main__":
    main()
