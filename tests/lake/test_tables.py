"""Tabular domains on a real PostgreSQL: taxi months as facts versioned by scope, typed columns
that reject what does not fit, schema changes between years, kills mid-load, consumers of a
column-set service."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataload.examples.taxi import TRIPS, content_hash, load_trip_file, trip_batches
from dataload.lake import Lake, db
from dataload.lake.history import record_history
from dataload.lake.tables import TableLoad
from dataload.sandbox.examples.taxi import write_parquet
from dataload.settings import Settings

XFORM = "taxi_trips_xform.taxi_trips"
RAW = "taxi_trips_raw.taxi_trips"


def month_file(folder: Path, year: int, month: int, rows: int, *, seed: int = 7) -> Path:
    path = folder / f"{year}-{month:02d}-{rows}-{seed}.parquet"
    if not path.exists():
        write_parquet(path, seed, year, month, rows)
    return path


def revised(source: Path, dest: Path, every: int = 100) -> Path:
    """The same trips with the fare of one in `every` changed (a republished month)."""
    table = pq.read_table(source)
    fares = table.column("fare_amount").to_pylist()
    fares = [f + 1.0 if i % every == 0 else f for i, f in enumerate(fares)]
    index = table.column_names.index("fare_amount")
    pq.write_table(table.set_column(index, "fare_amount", pa.array(fares)), dest)
    return dest


async def month_rows(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch(f"SELECT year_month, count(*) FROM {XFORM} GROUP BY 1 ORDER BY 1")
    return {r[0]: r[1] for r in rows}


async def test_an_identical_file_stores_nothing_and_a_revision_replaces_its_month_only(
    lake_db: Settings, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    january = month_file(tmp_path, 2024, 1, 3000)
    first = await load_trip_file(lake_db, january, year=2024, month=1)
    await load_trip_file(lake_db, month_file(tmp_path, 2024, 2, 2000), year=2024, month=2)
    raw_before = await conn.fetchval(f"SELECT count(*) FROM {RAW}")

    again = await load_trip_file(lake_db, january, year=2024, month=1)

    assert (first.status, first.inserted) == ("complete", 3000)
    assert (again.status, again.inserted, again.changed, again.unchanged) == (
        "complete",
        0,
        0,
        3000,
    )
    assert await conn.fetchval(f"SELECT count(*) FROM {RAW}") == raw_before

    fixed = revised(january, tmp_path / "2024-01-revised.parquet")
    revision = await load_trip_file(lake_db, fixed, year=2024, month=1)

    assert (revision.status, revision.changed) == ("complete", 3000)
    assert "replaced version" in (revision.outcome or "")
    assert await month_rows(conn) == {"2024-01": 3000, "2024-02": 2000}
    fares = await conn.fetchval(
        f"SELECT sum(fare_amount) FROM {XFORM} WHERE year_month = '2024-01'"
    )
    old = await conn.fetchval(
        f"SELECT sum(fare_amount) FROM {RAW} WHERE year_month = '2024-01' AND dl_version = 1"
    )
    assert fares == pytest.approx(old + 30.0)  # 30 of 3000 fares, one more dollar each
    versions = await record_history(conn, "taxi_trips", ["2024-01"])
    assert [v.data["rows"] for v in versions] == [3000, 3000]
    assert versions[0].valid_to is not None and versions[1].valid_to is None
    assert "dl_version = 1" in versions[0].data["rows_in_raw"]


async def test_history_command_shows_the_old_version_of_a_month(
    lake_db: Settings, run_cli, tmp_path: Path
) -> None:
    january = month_file(tmp_path, 2024, 1, 500)
    await load_trip_file(lake_db, january, year=2024, month=1)
    await load_trip_file(lake_db, revised(january, tmp_path / "r.parquet"), year=2024, month=1)

    result = await run_cli("history", "taxi_trips", "2024-01")

    assert result.exit_code == 0, result.output
    assert "version 1: live" in result.output and "version 2: live" in result.output
    assert "content_hash" in result.output  # what changed between them


async def test_a_bad_csv_value_rejects_its_row_and_the_column_keeps_its_type(
    lake_db: Settings, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    table = pq.read_table(month_file(tmp_path, 2024, 3, 200))
    csv_path = tmp_path / "yellow_tripdata_2024-03.csv"
    import pyarrow.csv as pcsv

    pcsv.write_csv(table, csv_path)
    lines = csv_path.read_text().splitlines()
    header = lines[0].replace('"', "").split(",")
    cells = lines[5].split(",")
    cells[header.index("trip_distance")] = "abc"
    lines[5] = ",".join(cells)
    csv_path.write_text("\n".join(lines) + "\n")

    summary = await load_trip_file(lake_db, csv_path, year=2024, month=3)

    assert (summary.status, summary.inserted, summary.rejected) == ("complete", 199, 1)
    reason = await conn.fetchval("SELECT reason FROM lake.rejected")
    # The row's place in the file (lines[5] is the 5th row after the header): not its value.
    assert reason == "row 5: column trip_distance: a text value that is not a double precision"
    kind = await conn.fetchval(
        "SELECT data_type FROM information_schema.columns"
        " WHERE table_schema = 'taxi_trips_raw' AND table_name = 'taxi_trips'"
        " AND column_name = 'trip_distance'"
    )
    assert kind == "double precision"


async def test_the_2023_2024_and_2025_schemas_load_and_changes_are_named(
    lake_db: Settings, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    loads = {}
    for year in (2023, 2025, 2024):
        path = month_file(tmp_path, year, 1, 300)
        loads[year] = await load_trip_file(lake_db, path, year=year, month=1)

    assert all(s.status == "complete" and s.inserted == 300 for s in loads.values())
    assert loads[2023].schema_changes == []  # airport_fee is Airport_fee, without case
    assert loads[2025].schema_changes == [
        "column cbd_congestion_fee (double precision) is new in the source: added"
    ]
    assert loads[2024].schema_changes == [
        "column cbd_congestion_fee is not in the source: stored null"
    ]
    fees = await conn.fetch(
        f"SELECT year_month, count(airport_fee) AS airport, count(cbd_congestion_fee) AS cbd"
        f" FROM {XFORM} GROUP BY 1 ORDER BY 1"
    )
    assert [tuple(r) for r in fees] == [
        ("2023-01", 300, 0),
        ("2024-01", 300, 0),
        ("2025-01", 300, 300),
    ]
    types = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'taxi_trips_raw' AND table_name = 'taxi_trips'"
        " AND column_name IN ('vendor_id', 'store_and_fwd_flag')  ORDER BY 1"
    )
    assert [tuple(r) for r in types] == [("store_and_fwd_flag", "text"), ("vendor_id", "integer")]


async def test_a_month_cut_short_is_guarded_and_the_month_stays(
    lake_db: Settings, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await load_trip_file(lake_db, month_file(tmp_path, 2024, 1, 1000), year=2024, month=1)

    cut = await load_trip_file(lake_db, month_file(tmp_path, 2024, 1, 600), year=2024, month=1)

    assert cut.status == "guarded" and "from 1000 rows to 600" in (cut.outcome or "")
    assert await month_rows(conn) == {"2024-01": 1000}


_KILLED_LOAD = """
import asyncio, sys
from pathlib import Path
from dataload.examples.taxi import load_trip_file
from dataload.settings import Settings
asyncio.run(load_trip_file(Settings(), Path(sys.argv[1]), year=2024, month=1))
"""


async def _copying(conn: asyncpg.Connection, within_s: float = 60.0) -> bool:
    """Whether a COPY into a taxi version's table began within `within_s` seconds."""
    for _ in range(int(within_s * 20)):
        busy = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'COPY%taxi_trips%'"
            " AND datname = current_database()"
        )
        if busy:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_load_killed_mid_copy_leaves_the_month_and_the_next_run_converges(
    lake_db: Settings, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    small = month_file(tmp_path, 2024, 1, 1000)
    await load_trip_file(lake_db, small, year=2024, month=1)
    big = month_file(tmp_path, 2024, 1, 400_000, seed=8)
    params = db.connect_params(lake_db)
    env = {
        **os.environ,
        "POSTGRES_HOST": params.host,
        "POSTGRES_PORT": str(params.port),
        "POSTGRES_USER": params.user,
        "POSTGRES_PASS": params.password or "",
        "POSTGRES_DB": params.database,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_LOAD, str(big), env=env
    )
    try:
        assert await _copying(conn), "the load never began its COPY"
        process.send_signal(signal.SIGKILL)
    finally:
        await asyncio.wait_for(process.wait(), 30)

    assert await month_rows(conn) == {"2024-01": 1000}
    again = await load_trip_file(lake_db, big, year=2024, month=1)
    assert (again.status, again.changed) == ("complete", 400_000)
    assert await month_rows(conn) == {"2024-01": 400_000}


async def test_a_version_whose_run_died_before_finishing_never_becomes_current(
    lake_db: Settings, pool: asyncpg.Pool, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    small = month_file(tmp_path, 2024, 1, 1000)
    await load_trip_file(lake_db, small, year=2024, month=1)
    run = await Lake(pool).start_run("taxi_trips")
    load = TableLoad(run, db.dsn(lake_db), declared=TRIPS)
    other = month_file(tmp_path, 2024, 1, 1000, seed=9)
    await load.load_facts("2024-01", content_hash(other), trip_batches(other, "parquet", 100_000))
    # The process dies between its load and its finish: its session, and the writer lock, end.
    writer = await conn.fetchval("SELECT writer_pid FROM lake.runs WHERE run_id = $1", run.run_id)
    await conn.execute("SELECT pg_terminate_backend($1, 30000)", writer)  # waits for it to end

    orphans = "SELECT count(*) FROM lake.table_versions WHERE current_from IS NULL"
    assert await conn.fetchval(orphans) == 1
    assert await month_rows(conn) == {"2024-01": 1000}
    same = await load_trip_file(lake_db, small, year=2024, month=1)

    assert (same.status, same.unchanged) == ("complete", 1000)
    assert await conn.fetchval(orphans) == 0  # dropped by the next load of the domain
    status = await conn.fetchval("SELECT status FROM lake.runs WHERE run_id = $1", run.run_id)
    assert status == "abandoned"


async def test_a_consumer_reads_its_services_columns_and_rows_only(
    lake_db: Settings, conn: asyncpg.Connection, run_cli, tmp_path: Path
) -> None:
    await load_trip_file(lake_db, month_file(tmp_path, 2024, 1, 500), year=2024, month=1)
    role = f"tips_{os.getpid()}"
    await conn.execute(f"DROP ROLE IF EXISTS {role}")
    await conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        result = await run_cli("services", "grant", "taxi_trips", "card_tips", "--role", role)
        assert result.exit_code == 0, result.output
        consumer = await asyncpg.connect(
            host=db.connect_params(lake_db).host,
            port=db.connect_params(lake_db).port,
            user=role,
            database=lake_db.postgres_db,
        )
        try:
            rows = await consumer.fetch("SELECT * FROM taxi_trips_curated.card_tips")
            assert set(rows[0].keys()) == {
                "year_month",
                "tpep_pickup_datetime",
                "fare_amount",
                "tip_amount",
            }
            card = await conn.fetchval(f"SELECT count(*) FROM {XFORM} WHERE payment_type = 1")
            assert len(rows) == card < 500
            for table in (XFORM, RAW, "taxi_trips_curated.fares"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await consumer.fetch(f"SELECT 1 FROM {table} LIMIT 1")
            revoked = await run_cli("services", "revoke", "taxi_trips", "card_tips", "--role", role)
            assert revoked.exit_code == 0, revoked.output
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await consumer.fetch("SELECT 1 FROM taxi_trips_curated.card_tips")
        finally:
            await consumer.close()
    finally:
        await conn.execute(f"DROP OWNED BY {role}")
        await conn.execute(f"DROP ROLE {role}")


async def test_services_list_shows_a_tables_columns_and_row_filter(
    lake_db: Settings, run_cli, tmp_path: Path
) -> None:
    await load_trip_file(lake_db, month_file(tmp_path, 2024, 1, 200), year=2024, month=1)

    result = await run_cli("services", "list", "taxi_trips")

    assert result.exit_code == 0, result.output
    assert "card_tips (" in result.output and "WHERE payment_type = 1" in result.output
    assert "fares (200 rows)" in result.output
