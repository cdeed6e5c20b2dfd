"""The academic calendar: terms per career, which one is current on a date, BU_TERM_QRY rows.

STRM codes follow PeopleSoft's habit at BU: `2` for the 2000s, two digits of year, one digit of
season (2 Spring, 5 Summer 1, 6 Summer 2, 8 Fall), so Fall 2026 is `2268`. A career's current
term on a date is its first term that has not ended yet; terms become visible in BU_TERM_QRY a
year before they begin, so the list grows as days pass.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

__all__ = ["CAREERS", "Calendar", "Term", "active_ugrd_terms"]

CAREERS = ("GRAD", "LAW", "UGRD")
_SEASONS = (("Spring", 2), ("Summer 1", 5), ("Summer 2", 6), ("Fall", 8))
_MON, _TUE, _WED, _FRI = 0, 1, 2, 4
_VISIBLE_AHEAD = timedelta(days=365)


def _on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


@dataclass(frozen=True)
class Term:
    career: str
    index: int  # position in the career's list of terms, oldest first
    year: int
    season: str
    begin: date
    end: date

    @cached_property
    def strm(self) -> str:
        digit = dict(_SEASONS)[self.season]
        return f"{self.year // 1000}{self.year % 100:02d}{digit}"

    @property
    def descr(self) -> str:
        return f"{self.season} {self.year}"

    @property
    def is_summer(self) -> bool:
        return self.season.startswith("Summer")

    @property
    def acad_year(self) -> str:
        # BU names an academic year after the calendar year in which it ends.
        return str(self.year + 1 if self.season == "Fall" else self.year)


def _term_dates(career: str, year: int) -> list[tuple[str, date, date]]:
    """(season, begin, end) of the four terms of one career and year."""
    if career == "LAW":
        spring = _on_or_after(date(year, 1, 8), _MON)
        spring_end = _on_or_after(date(year, 5, 10), _FRI)
        summer1 = _on_or_after(date(year, 5, 20), _MON)
        fall = _on_or_after(date(year, 8, 22), _MON)
    else:
        spring = _on_or_after(date(year, 1, 18), _WED)
        spring_end = _on_or_after(date(year, 5, 8), _FRI) + timedelta(days=4)
        summer1 = _on_or_after(date(year, 5, 19), _TUE)
        fall = _on_or_after(date(year, 9, 1), _MON) + timedelta(days=1)
    summer1_end = summer1 + timedelta(days=41)
    summer2 = summer1_end + timedelta(days=4)
    summer2_end = summer2 + timedelta(days=41)
    fall_end = _on_or_after(date(year, 12, 15), _FRI) + timedelta(days=4)
    return [
        ("Spring", spring, spring_end),
        ("Summer 1", summer1, summer1_end),
        ("Summer 2", summer2, summer2_end),
        ("Fall", fall, fall_end),
    ]


class Calendar:
    """All terms of every career from five years before `first_day` to decades after it."""

    def __init__(self, first_day: date, *, years_back: int = 5, years_ahead: int = 40) -> None:
        first_year = first_day.year - years_back
        self._terms: dict[str, list[Term]] = {
            career: [
                Term(career, 4 * (year - first_year) + n, year, season, begin, end)
                for year in range(first_year, first_day.year + years_ahead)
                for n, (season, begin, end) in enumerate(_term_dates(career, year))
            ]
            for career in CAREERS
        }
        self._ends = {career: [t.end for t in terms] for career, terms in self._terms.items()}
        self._begins = {career: [t.begin for t in terms] for career, terms in self._terms.items()}

    def terms(self, career: str) -> list[Term]:
        """Every term of a career, oldest first (index = position in this list)."""
        return self._terms[career]

    def current_index(self, career: str, when: date) -> int:
        return bisect_left(self._ends[career], when)

    def visible_count(self, career: str, when: date) -> int:
        """How many of the career's terms (from the oldest) BU_TERM_QRY lists on `when`."""
        return bisect_left(self._begins[career], when + _VISIBLE_AHEAD + timedelta(days=1))

    def term_rows(self, when: date) -> list[dict[str, object]]:
        """BU_TERM_QRY rows on `when`, ordered by career and STRM, row numbers from 1."""
        rows: list[dict[str, object]] = []
        for career in CAREERS:
            current = self.current_index(career, when)
            for index, term in enumerate(self._terms[career][: self.visible_count(career, when)]):
                rows.append(
                    {
                        "attr:rownumber": len(rows) + 1,
                        "INSTITUTION": "BU001",
                        "ACAD_CAREER": career,
                        "STRM": term.strm,
                        "DESCR": term.descr,
                        "TERM_BEGIN_DT": term.begin.isoformat(),
                        "TERM_END_DT": term.end.isoformat(),
                        "CURRENT_IND": _yn(index == current),
                        "BU_CUR_FUTURE_TERM": _yn(index >= current),
                        "BU_FUTURE_TERM_1": _yn(index == current + 1),
                        "BU_PAST_TERM_1": _yn(index == current - 1),
                        "OLD_TERM": _yn(index < current - 1),
                        "ACAD_YEAR": term.acad_year,
                    }
                )
        return rows


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def active_ugrd_terms(rows: list[dict[str, object]]) -> list[str]:
    """The active UGRD term codes under DESIGN.md's rule, in row order.

    Among UGRD terms ordered by row number: the current term, the one before, the one after,
    and, when the current term is not a Summer term, one more: the term before the previous one
    if the previous one is a Summer term, otherwise the term after the next one.
    """
    ugrd = sorted(
        (row for row in rows if row["ACAD_CAREER"] == "UGRD"),
        key=lambda row: int(str(row["attr:rownumber"])),
    )
    current = next(i for i, row in enumerate(ugrd) if row["CURRENT_IND"] == "Y")

    def summer(i: int) -> bool:
        return str(ugrd[i]["DESCR"]).startswith("Summer")

    picked = [current - 1, current, current + 1]
    if not summer(current):
        picked.append(current - 2 if summer(current - 1) else current + 2)
    return [str(ugrd[i]["STRM"]) for i in sorted(picked)]
