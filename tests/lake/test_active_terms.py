"""The term domain's active_terms service, by DESIGN.md's rule, against the sandbox's oracle."""

from __future__ import annotations

from datetime import date

import pytest

from dataload.lake import Lake
from dataload.sandbox.calendar import Calendar, active_ugrd_terms


def ugrd(rows: list[tuple[str, str, str]]) -> list[dict]:
    """BU_TERM_QRY-like rows from (STRM, DESCR, CURRENT_IND), in row order."""
    return [
        {
            "attr:rownumber": n,
            "ACAD_CAREER": "UGRD",
            "STRM": strm,
            "DESCR": descr,
            "CURRENT_IND": current,
        }
        for n, (strm, descr, current) in enumerate(rows, 1)
    ]


async def load_terms(lake: Lake, rows: list[dict]) -> list[str]:
    run = await lake.start_run("term")
    await run.load(rows)
    await run.finish(complete=True, allow_mass_delete=True)  # a few terms: any is a large share
    return await lake.active_term_codes()


async def test_a_fall_term_after_a_summer_takes_the_term_before_the_summer(lake: Lake):
    rows = ugrd(
        [
            ("2262", "Spring 2026", "N"),
            ("2265", "Summer 1 2026", "N"),
            ("2268", "Fall 2026", "Y"),
            ("2272", "Spring 2027", "N"),
            ("2275", "Summer 1 2027", "N"),
        ]
    )
    assert await load_terms(lake, rows) == ["2262", "2265", "2268", "2272"]


async def test_a_spring_term_after_a_fall_takes_the_term_after_the_next(lake: Lake):
    rows = ugrd(
        [
            ("2258", "Fall 2025", "N"),
            ("2262", "Spring 2026", "Y"),
            ("2265", "Summer 1 2026", "N"),
            ("2266", "Summer 2 2026", "N"),
        ]
    )
    assert await load_terms(lake, rows) == ["2258", "2262", "2265", "2266"]


async def test_a_summer_term_takes_only_its_neighbours(lake: Lake):
    rows = ugrd(
        [
            ("2262", "Spring 2026", "N"),
            ("2265", "Summer 1 2026", "Y"),
            ("2266", "Summer 2 2026", "N"),
            ("2268", "Fall 2026", "N"),
        ]
    )
    assert await load_terms(lake, rows) == ["2262", "2265", "2266"]


async def test_other_careers_and_deleted_terms_do_not_count(lake: Lake, conn):
    rows = ugrd(
        [
            ("2262", "Spring 2026", "N"),
            ("2268", "Fall 2026", "Y"),
            ("2272", "Spring 2027", "N"),
            ("2278", "Fall 2027", "N"),
        ]
    )
    grad = {**rows[1], "ACAD_CAREER": "GRAD", "STRM": "2268"}
    assert await load_terms(lake, [*rows, grad]) == ["2262", "2268", "2272", "2278"]

    assert await load_terms(lake, rows[:3]) == ["2262", "2268", "2272"]
    services = await conn.fetch(
        "SELECT DISTINCT acad_career FROM term_curated.term_data_by_service"
        " WHERE service = 'active_terms'"
    )
    assert [r[0] for r in services] == ["UGRD"]


@pytest.mark.parametrize(
    "day",
    [date(2026, 1, 20), date(2026, 6, 1), date(2026, 7, 20), date(2026, 9, 15), date(2026, 12, 30)],
)
async def test_the_lake_agrees_with_the_sandbox_on_any_day(lake: Lake, day: date):
    rows = Calendar(date(2026, 1, 1)).term_rows(day)
    expected = sorted(active_ugrd_terms(rows))
    assert await load_terms(lake, rows) == expected
