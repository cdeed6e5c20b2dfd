"""One contender of benchmarks/taxi_load.py, in a process of its own.

    python benchmarks/taxi_contenders.py CONTENDER --file F [--year Y --month M] [--batch N]

Imports nothing but the standard library at the top, so that the same file runs under the
project's Python (typed COPY via ADBC, asyncpg, dataload) and under the benchmark's side
virtual environment (dlt, pandas, psycopg 3), which does not have dataload installed.

Where to connect comes from the environment: POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER,
POSTGRES_DB, and the password (if any) in PGPASSWORD, which libpq, psycopg and asyncpg all
read. The process prints one JSON line: the seconds from the Parquet file to committed rows
(measured after the imports), the process's peak RSS (its VmHWM, interpreter and imports
included: see `peak_rss`), and what the contender reports.
A contender that fails prints {"error": ...} and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TABLE = "yellow_trips"
#: Arrow type names to PostgreSQL types: what ADBC's `mode="create"` makes of the file.
PG_TYPES = {
    "int32": "integer",
    "int64": "bigint",
    "double": "double precision",
    "string": "text",
    "large_string": "text",
    "timestamp[us]": "timestamp",
}


def _where() -> dict[str, Any]:
    return {
        "host": os.environ.get("POSTGRES_HOST", "127.0.0.1"),
        "port": int(os.environ.get("POSTGRES_PORT", "5432")),
        "user": os.environ.get("POSTGRES_USER", "postgres"),
        "database": os.environ["POSTGRES_DB"],
    }


def _uri(driver: str = "postgresql", password: str | None = None) -> str:
    from urllib.parse import quote

    w = _where()
    user = quote(w["user"], safe="")
    if password is not None:
        user += ":" + quote(password, safe="")
    return f"{driver}://{user}@{w['host']}:{w['port']}/{w['database']}"


def _batches(path: Path, batch: int) -> Iterator[Any]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        yield from parquet.iter_batches(batch_size=batch)


def _schema(path: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.read_schema(path)


def _create_table(schema: Any) -> str:
    columns = ", ".join(f'"{f.name}" {PG_TYPES[str(f.type)]}' for f in schema)
    return f"CREATE TABLE {TABLE} ({columns})"


# ---- the contenders: each returns (seconds, details) --------------------------------------


def adbc_copy(args: argparse.Namespace) -> tuple[float, dict[str, Any]]:
    """Typed COPY via ADBC: the file's record batches into a plain table (the limit)."""
    import adbc_driver_postgresql.dbapi as pgdb
    import pyarrow as pa

    schema = _schema(args.file)
    started = time.perf_counter()
    with pgdb.connect(_uri()) as conn:
        with conn.cursor() as cur:
            reader = pa.RecordBatchReader.from_batches(schema, _batches(args.file, args.batch))
            cur.adbc_ingest(TABLE, reader, mode="create")
        conn.commit()
    elapsed = time.perf_counter() - started
    return elapsed, {"rows": _count_libpq(pgdb.connect(_uri()))}


def _count_libpq(conn: Any) -> int:
    with conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {TABLE}")
        return int(cur.fetchone()[0])


def asyncpg_copy(args: argparse.Namespace) -> tuple[float, dict[str, Any]]:
    """asyncpg copy_records_to_table, the rows from Arrow through to_pylist."""
    import asyncpg

    schema = _schema(args.file)
    names = schema.names

    async def load() -> tuple[float, int]:
        w = _where()
        started = time.perf_counter()
        conn = await asyncpg.connect(
            host=w["host"], port=w["port"], user=w["user"], database=w["database"]
        )
        try:
            async with conn.transaction():
                await conn.execute(_create_table(schema))
                for batch in _batches(args.file, args.batch):
                    records = [tuple(row.values()) for row in batch.to_pylist()]
                    await conn.copy_records_to_table(TABLE, records=records, columns=names)
            elapsed = time.perf_counter() - started
            return elapsed, await conn.fetchval(f"SELECT count(*) FROM {TABLE}")
        finally:
            await conn.close()

    elapsed, rows = asyncio.run(load())
    return elapsed, {"rows": rows}


def psycopg_copy(args: argparse.Namespace) -> tuple[float, dict[str, Any]]:
    """psycopg 3 binary COPY, write_row for each row (rows from Arrow column lists)."""
    import psycopg

    schema = _schema(args.file)
    columns = ", ".join(f'"{n}"' for n in schema.names)
    types = [PG_TYPES[str(f.type)] for f in schema]
    started = time.perf_counter()
    with psycopg.connect(_uri()) as conn:
        with conn.cursor() as cur:
            cur.execute(_create_table(schema))
            copy_sql = f"COPY {TABLE} ({columns}) FROM STDIN (FORMAT BINARY)"
            with cur.copy(copy_sql) as copy:
                copy.set_types(types)
                for batch in _batches(args.file, args.batch):
                    for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                        copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        rows = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    return elapsed, {"rows": rows}


def pandas_to_sql(args: argparse.Namespace) -> tuple[float, dict[str, Any]]:
    """pandas to_sql as seed 004 does it: the whole file in a DataFrame, an empty to_sql with
    if_exists="replace" for the table, then to_sql with if_exists="append" (SQLAlchemy,
    psycopg2, pandas' default method)."""
    import pandas as pd
    from sqlalchemy import create_engine, text

    engine = create_engine(_uri("postgresql+psycopg2"))
    started = time.perf_counter()
    df = pd.read_parquet(args.file)
    df.head(n=0).to_sql(name=TABLE, con=engine, if_exists="replace")
    df.to_sql(name=TABLE, con=engine, if_exists="append")
    elapsed = time.perf_counter() - started
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT count(*) FROM {TABLE}")).scalar_one()
    engine.dispose()
    return elapsed, {"rows": rows}


def _dlt(args: argparse.Namespace, merge: bool) -> tuple[float, dict[str, Any]]:
    """dlt's Arrow path: a resource yields the file's record batches; the postgres
    destination's parquet loader file format (ADBC), or --dlt-format."""
    # No telemetry (there is no network to send it to), and quiet.
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    import dlt
    import pyarrow as pa

    year_month = f"{args.year}-{args.month:02d}"
    if merge:
        # A month is a keyless scoped snapshot: replacing it is dlt's merge with the month as
        # merge key, strategy delete-insert (delete the destination's rows of the months in
        # the load, insert the load's rows). No primary key: trips have none.
        disposition: Any = {"disposition": "merge", "strategy": "delete-insert"}
        hints: dict[str, Any] = {"merge_key": "year_month"}
    else:
        disposition, hints = "append", {}

    @dlt.resource(name=TABLE, write_disposition=disposition, **hints)
    def trips() -> Iterator[Any]:
        for batch in _batches(args.file, args.batch):
            if merge:
                month = pa.array([year_month] * batch.num_rows, pa.string())
                batch = batch.append_column("year_month", month)
            yield batch

    pipelines_dir = args.state or tempfile.mkdtemp(prefix="dataload-bench-dlt-")
    started = time.perf_counter()
    pipeline = dlt.pipeline(
        pipeline_name="taxi_bench",
        pipelines_dir=pipelines_dir,
        # dlt insists on a password; a trust-auth server ignores this one.
        destination=dlt.destinations.postgres(
            credentials=_uri(password=os.environ.get("PGPASSWORD") or "unused")
        ),
        dataset_name="taxi",
    )
    info = pipeline.run(trips(), loader_file_format=args.dlt_format)
    elapsed = time.perf_counter() - started
    formats = sorted(
        {
            job.job_file_info.file_format
            for package in info.load_packages
            for job in package.jobs["completed_jobs"]
        }
    )
    with pipeline.sql_client() as client:
        rows = client.execute_sql(f"SELECT count(*) FROM {TABLE}")[0][0]
    return elapsed, {"rows": rows, "formats": formats}


def dlt_append(args: argparse.Namespace) -> tuple[float, dict[str, Any]]:
    return _dlt(args, merge=False)


def dlt_merge(args: argparse.Namespace) -> tuple[float, dict[str, Any]]:
    return _dlt(args, merge=True)


def dataload(args: argparse.Namespace) -> tuple[float, dict[str, Any]]:
    """dataload: load_trip_file, the month's file as one lake run, finished."""
    from dataload.examples.taxi import DOMAIN, load_trip_file
    from dataload.lake import (
        db,
        init_lake,
        tables,  # noqa: F401  the write path, imported lazily by the run
    )
    from dataload.settings import Settings

    settings = Settings()

    async def initialise() -> None:  # `dataload db init`, once per database: not the load's
        conn = await db.connect(settings)
        try:
            await init_lake(conn, [DOMAIN.tables()])
        finally:
            await conn.close()

    init_started = time.perf_counter()
    asyncio.run(initialise())
    init_s = time.perf_counter() - init_started
    started = time.perf_counter()
    summary = asyncio.run(load_trip_file(settings, args.file, year=args.year, month=args.month))
    elapsed = time.perf_counter() - started
    counts = ("status", "offered", "inserted", "changed", "unchanged", "rejected")
    details = {name: getattr(summary, name, None) for name in counts}
    return elapsed, {**details, "db_init_s": round(init_s, 2)}


def versions(args: argparse.Namespace) -> tuple[float, dict[str, Any]]:
    """The versions of what this interpreter has, of the libraries the contenders use."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, Any] = {"python": sys.version.split()[0]}
    for name in (
        "dlt",
        "pandas",
        "sqlalchemy",
        "psycopg2-binary",
        "psycopg",
        "pyarrow",
        "adbc-driver-postgresql",
        "asyncpg",
    ):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return 0.0, found


CONTENDERS: dict[str, Callable[[argparse.Namespace], tuple[float, dict[str, Any]]]] = {
    "adbc": adbc_copy,
    "asyncpg": asyncpg_copy,
    "psycopg": psycopg_copy,
    "pandas": pandas_to_sql,
    "dlt-append": dlt_append,
    "dlt-merge": dlt_merge,
    "dataload": dataload,
    "versions": versions,
}


def peak_rss() -> int:
    """Peak resident memory of this process (and of any children it waited for), in bytes.

    The process's own peak is /proc/self/status VmHWM, the high-water mark of its address
    space since exec. Not getrusage(RUSAGE_SELF).ru_maxrss: Linux keeps that across execve,
    so a process the benchmark spawns (vfork then exec) reports the benchmark's own peak if it
    was larger.
    """
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return max(int(line.split()[1]) * 1024, children)
    except OSError:
        pass
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, children)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("contender", choices=sorted(CONTENDERS))
    parser.add_argument("--file", type=Path)
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--month", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100_000, help="rows per record batch")
    parser.add_argument("--dlt-format", default="parquet", choices=("parquet", "csv"))
    parser.add_argument("--state", help="dlt's pipelines folder (kept between two loads)")
    args = parser.parse_args()
    try:
        elapsed, details = CONTENDERS[args.contender](args)
    except BaseException as exc:  # reported to the parent, whatever it was
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(json.dumps({"error": message[:400], "rss": peak_rss()}), flush=True)
        traceback.print_exc(file=sys.stderr)
        return 1
    print(json.dumps({"seconds": elapsed, "rss": peak_rss(), **details}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
