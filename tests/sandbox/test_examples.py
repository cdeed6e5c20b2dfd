"""The example domains' simulators answer as the real services document it."""

from __future__ import annotations

import httpx

from dataload.sandbox.config import SandboxConfig

RATES = "/frankfurter/v1"


def rate_days(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return list(response.json()["rates"])


async def test_a_range_answers_from_the_working_day_on_or_before_its_start(
    client: httpx.AsyncClient,
) -> None:
    # 1 January is a TARGET closing day: no reference rates, so the range begins on Friday.
    new_year = await client.get(f"{RATES}/2024-01-01..2024-01-05")
    # From a Saturday: Good Friday (29 March 2024) and Easter Monday have no rates either.
    easter = await client.get(f"{RATES}/2024-03-30..2024-04-02", params={"base": "USD"})
    weekend = await client.get(f"{RATES}/2026-04-25..2026-04-28")

    assert new_year.json()["start_date"] == "2023-12-29"
    assert rate_days(new_year) == [
        "2023-12-29",
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
    ]
    assert rate_days(easter) == ["2024-03-28", "2024-04-02"]
    assert rate_days(weekend) == ["2026-04-24", "2026-04-27", "2026-04-28"]


async def test_a_day_without_rates_answers_the_working_day_before_it(
    client: httpx.AsyncClient,
) -> None:
    holiday = await client.get(f"{RATES}/2024-12-26")
    latest = await client.get(f"{RATES}/latest")  # the sandbox's today, Friday 1 May 2026
    future = await client.get(f"{RATES}/2026-05-04")

    assert holiday.json()["date"] == "2024-12-24"
    assert latest.json()["date"] == "2026-04-30"
    assert future.status_code == 404


async def test_the_trip_bucket_answers_403_for_a_file_it_does_not_have(
    client: httpx.AsyncClient, config: SandboxConfig
) -> None:
    config.examples.taxi_rows = 10
    # The sandbox's date is 2026-05-01: March is out, April is not; the TLC's data begins in 2009.
    published = await client.get("/trip-data/yellow_tripdata_2026-03.parquet")
    unpublished = await client.get("/trip-data/yellow_tripdata_2026-04.parquet")
    too_early = await client.get("/trip-data/yellow_tripdata_2008-12.parquet")
    csv = await client.get("/trip-data/yellow_tripdata_2024-01.csv")  # Parquet only since 2022
    unknown = await client.get("/trip-data/green_tripdata_2024-01.parquet")

    assert published.status_code == 200 and published.content.startswith(b"PAR1")
    for refused in (unpublished, too_early, csv, unknown):
        assert refused.status_code == 403, refused.request.url
        assert b"<Code>AccessDenied</Code>" in refused.content


async def test_a_mirror_of_the_old_csv_files_serves_them(
    client: httpx.AsyncClient, config: SandboxConfig
) -> None:
    config.examples.taxi_rows = 10
    config.examples.taxi_csv = True

    csv = await client.get("/trip-data/yellow_tripdata_2024-01.csv")
    unpublished = await client.get("/trip-data/yellow_tripdata_2026-04.csv")

    assert csv.status_code == 200 and csv.text.startswith("VendorID,tpep_pickup_datetime")
    assert len(csv.text.splitlines()) == 11
    assert unpublished.status_code == 403
