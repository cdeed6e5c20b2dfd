"""taxi_trips against the TLC bucket's refusals: the bucket answers 403, not 404, for a file it
does not have, and the run's error says which file is missing and why, not to check credentials
the bucket does not take."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.flows.world import World

from dataload.flows.domain import domain_flow
from dataload.sources.errors import SourceAuthError, SourceResponseError

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _small_months(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world.sandbox.config.examples.taxi_rows = 200
    monkeypatch.setenv("TAXI_DOWNLOAD_DIR", str(tmp_path / "downloads"))


async def test_a_month_not_published_yet_fails_saying_so(world: World) -> None:
    # The sandbox's date is 2026-05-01: April's trips are not published.
    with pytest.raises(SourceResponseError) as failure:
        await domain_flow("taxi_trips", {"year": "2026", "month": "4"})

    message = str(failure.value)
    assert not isinstance(failure.value, SourceAuthError)
    assert "yellow_tripdata_2026-04.parquet answered 403" in message
    assert "the month 2026-04 is not published" in message
    assert "credentials" not in message and "takes no key" not in message
    assert (await world.last_run("taxi_trips"))["status"] == "failed"


async def test_a_csv_file_from_the_tlc_fails_saying_parquet_only(world: World) -> None:
    with pytest.raises(SourceResponseError) as failure:
        await domain_flow("taxi_trips", {"year": "2024", "month": "1", "format": "csv"})

    message = str(failure.value)
    assert "yellow_tripdata_2024-01.csv is not offered" in message
    assert "Parquet only" in message and "--param format=parquet" in message
    assert "credentials" not in message


async def test_a_mirror_that_serves_csv_loads_the_month(world: World) -> None:
    world.sandbox.config.examples.taxi_csv = True

    report = await domain_flow("taxi_trips", {"year": "2024", "month": "1", "format": "csv"})

    assert report.status == "complete" and report.counts["new"] == 200
