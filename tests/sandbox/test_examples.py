"""The example domains' simulators answer as the real services document it."""

from __future__ import annotations

import httpx

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
