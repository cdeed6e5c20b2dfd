"""Fixed word lists shared by people and courses."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

__all__ = ["DEPARTMENTS", "iso_date"]

# (subject code, department name, school)
DEPARTMENTS = (
    ("CS", "Computer Science", "CAS"),
    ("MA", "Mathematics & Statistics", "CAS"),
    ("PY", "Physics", "CAS"),
    ("CH", "Chemistry", "CAS"),
    ("BI", "Biology", "CAS"),
    ("EC", "Economics", "CAS"),
    ("HI", "History", "CAS"),
    ("EN", "English", "CAS"),
    ("EK", "Engineering Core", "ENG"),
    ("ME", "Mechanical Engineering", "ENG"),
    ("FE", "Finance", "QST"),
    ("MK", "Marketing", "QST"),
    ("CO", "Communication", "COM"),
    ("HS", "Health Sciences", "SAR"),
    ("DS", "Data Science", "CDS"),
)


_FIRST_YEAR, _LAST_YEAR = 1940, 2040


@cache
def _iso_days() -> tuple[str, ...]:
    first = date(_FIRST_YEAR, 1, 1)
    count = (date(_LAST_YEAR, 1, 1) - first).days
    return tuple((first + timedelta(days=n)).isoformat() for n in range(count))


@cache
def _year_start(year: int) -> int:
    return (date(year, 1, 1) - date(_FIRST_YEAR, 1, 1)).days


def iso_date(year: int, day_of_span: int) -> str:
    """`date(year, 1, 1) + day_of_span days` as YYYY-MM-DD, from a table (fast in loops)."""
    return _iso_days()[_year_start(year) + day_of_span]
