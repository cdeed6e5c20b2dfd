"""taxi_trips: a month from Parquet or CSV, the download cached by Prefect, each month a version
of its own (a facts table partitioned by month)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.flows.world import World

from dataload.flows.domain import domain_flow

pytestmark = pytest.mark.slow

ROWS = 3000
XFORM = "taxi_trips_xform.taxi_trips"


@pytest.fixture(autouse=True)
def _small_months(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world.sandbox.config.examples.taxi_rows = ROWS
    monkeypatch.setenv("TAXI_DOWNLOAD_DIR", str(tmp_path / "downloads"))


def file_requests(world: World) -> int:
    stats = world.sandbox.stats.snapshot()["endpoints"]
    return stats.get("taxi.file", {}).get("requests", 0)


async def test_a_month_loads_and_a_rerun_reads_the_cached_download(world: World) -> None:
    january = {"year": "2024", "month": "1"}

    first = await domain_flow("taxi_trips", january)
    second = await domain_flow("taxi_trips", january)

    assert first.status == "complete" and first.counts["new"] == ROWS
    assert second.counts["unchanged"] == ROWS
    assert file_requests(world) == 1  # the second run found the file it had
    row = await world.conn.fetchrow(
        f"SELECT tpep_pickup_datetime, airport_fee FROM {XFORM} WHERE year_month = '2024-01'"
        " LIMIT 1"
    )
    assert (row["tpep_pickup_datetime"].year, row["tpep_pickup_datetime"].month) == (2024, 1)
    assert row["airport_fee"] is not None  # the file's Airport_fee


async def test_reloading_a_month_replaces_that_month_only(world: World) -> None:
    await domain_flow("taxi_trips", {"year": "2024", "month": "1"})
    await domain_flow("taxi_trips", {"year": "2024", "month": "2"})
    world.sandbox.config.examples.taxi_rows = ROWS - 60  # January, republished shorter
    world.sandbox.config.examples.taxi_csv = True  # a mirror of the old CSV files

    # As CSV this time, read as text and cast to the table's types: a new version of January.
    report = await domain_flow("taxi_trips", {"year": "2024", "month": "1", "format": "csv"})

    assert report.status == "complete" and report.counts["changed"] == ROWS - 60
    assert "2024-01: version 3 replaced version 1" in (report.outcome or "")
    live = await world.conn.fetch(f"SELECT year_month, count(*) FROM {XFORM} GROUP BY 1 ORDER BY 1")
    assert [tuple(r) for r in live] == [("2024-01", ROWS - 60), ("2024-02", ROWS)]
    history = await world.conn.fetchval(
        "SELECT count(*) FROM taxi_trips_raw.taxi_trips WHERE year_month = '2024-01'"
    )
    assert history == ROWS + ROWS - 60  # the first version stays as history
