"""Courses per term (SnapLogic course), one row per (career, term, courseId, sessionCode).

A term of a career offers `base` courses on day 1; `course_arrival * base` courses are added
per day, each course is cancelled for good with `course_cancel` per day, and each course row
changes (enrollment, room or instructor) with `course_change` per day. Nothing changes after
the term has ended. Catalog facts (subject, number, title, units) belong to the catalog entry
and stay the same from term to term.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from dataload.sandbox.arrivals import Arrivals
from dataload.sandbox.calendar import CAREERS, Term
from dataload.sandbox.config import DayRates
from dataload.sandbox.pools import Pools
from dataload.sandbox.rng import Tag, event_days, happens_on, mix, rng_for
from dataload.sandbox.vocabulary import DEPARTMENTS

__all__ = ["CourseCatalog", "CourseKey"]

_SHARE = {"UGRD": 0.6, "GRAD": 0.3, "LAW": 0.1}
_COMPONENTS = ("LEC", "LEC", "LEC", "SEM", "LAB", "DIS")
_DAYS = ("MWF", "TR", "MW", "TR", "F", "M", "W")
_STARTS = ("08:00", "09:05", "10:10", "11:15", "12:20", "14:30", "15:35", "17:00", "18:30")
_BUILDINGS = ("CAS", "PHO", "CDS", "EMB", "HAR", "SAR", "COM", "LAW", "STO", "KCB")
_LEVEL_WORDS = ("Introduction to", "Topics in", "Advanced", "Seminar in", "Foundations of")

CourseKey = tuple[str, str, int, str]  # (academicCareer, termCode, courseId, sessionCode)


class CourseCatalog:
    def __init__(
        self, seed: int, per_term: int, rates: DayRates, pools: Pools, first_day: date
    ) -> None:
        self.seed = seed
        self.per_term = per_term
        self.rates = rates
        self.pools = pools
        self.first_day = first_day

    # which courses exist ---------------------------------------------------------------------

    def base_count(self, term: Term) -> int:
        count = self.per_term * _SHARE[term.career] * (0.3 if term.is_summer else 1.0)
        return max(int(count), 3)

    def _catalog_size(self, term: Term) -> int:
        return 5 * self.base_count(term) + 50

    def _last_active_day(self, term: Term, day: int) -> int:
        """Events stop once the term has ended."""
        return min(day, (term.end - self.first_day).days + 1)

    def _arrivals(self, term: Term) -> Arrivals:
        return Arrivals(self.base_count(term) * self.rates.course_arrival)

    def universe(self, term: Term, day: int) -> int:
        day = self._last_active_day(term, day)
        total = self.base_count(term) + self._arrivals(term).by(day)
        return min(total, self._catalog_size(term))

    def _arrive_day(self, term: Term, j: int) -> int:
        base = self.base_count(term)
        return 1 if j < base else self._arrivals(term).day_of(j - base + 1)

    def _key(self, term: Term, j: int) -> tuple[int, ...]:
        return (self.seed, CAREERS.index(term.career), term.index, j)

    def _cancel_day(self, term: Term, j: int, arrive: int, day: int) -> int | None:
        until = self._last_active_day(term, day)
        rate = self.rates.course_cancel
        return next(event_days(rate, arrive, until, *self._key(term, j), Tag.COURSE_CANCEL), None)

    def offered(self, term: Term, day: int) -> list[int]:
        """Indexes of the term's courses that exist on `day`."""
        found = []
        for j in range(self.universe(term, day)):
            arrive = self._arrive_day(term, j)
            if arrive <= day and self._cancel_day(term, j, arrive, day) is None:
                found.append(j)
        return found

    # what a course says ----------------------------------------------------------------------

    def course_id(self, term: Term, j: int) -> int:
        size = self._catalog_size(term)
        a = mix(self.seed, Tag.COURSE_ID, CAREERS.index(term.career)) % size
        while math.gcd(a, size) != 1:
            a += 1
        entry = (a * j + mix(self.seed, Tag.COURSE_ID, term.index) % size) % size
        return 100000 + 250000 * CAREERS.index(term.career) + entry

    def rows(self, term: Term, j: int, day: int) -> list[dict]:
        """The `v2` objects of course `j` of `term` on `day`: one per session."""
        course_id = self.course_id(term, j)
        catalog = rng_for(self.seed, Tag.CATALOG, course_id)
        c = catalog.random
        pools = self.pools
        department = DEPARTMENTS[int(c() * len(DEPARTMENTS))]
        level = 1 + int(c() * (4 if term.career == "UGRD" else 5))
        number = f"{level}{int(c() * 100):02d}"
        topic = " ".join(pools.words[int(c() * len(pools.words))] for _ in range(2)).title()
        title = f"{_LEVEL_WORDS[int(c() * len(_LEVEL_WORDS))]} {topic}"
        component = _COMPONENTS[int(c() * len(_COMPONENTS))]
        units = 4 if component != "LAB" else 1
        offering = rng_for(*self._key(term, j), Tag.OFFERING)
        o = offering.random
        sessions = ["1"]
        if not term.is_summer and o() < 0.15:
            sessions.append("A")
        if not term.is_summer and o() < 0.10:
            sessions.append("B")
        arrive = self._arrive_day(term, j)
        result = []
        for n, session in enumerate(sessions):
            begin, end = term.begin, term.end
            if session == "A":
                end = begin + (end - begin) / 2
            elif session == "B":
                begin = begin + (end - begin) / 2 + timedelta(days=1)
            capacity = 10 * (2 + int(o() * 20))
            firsts = pools.first_names_female if o() < 0.5 else pools.first_names_male
            first = firsts[int(o() * len(firsts))]
            last = pools.last_names[int(o() * len(pools.last_names))]
            v2 = {
                "courseId": course_id,
                "sessionCode": session,
                "classNumber": 10000 + int(o() * 89999),
                "subject": f"{department[2]} {department[0]}",
                "catalogNumber": number,
                "section": f"{'ABC'[n]}{1 + int(o() * 3)}",
                "title": title,
                "description": f"{title}. "
                + " ".join(pools.words[int(o() * len(pools.words))] for _ in range(25)),
                "units": units,
                "component": component,
                "instructionMode": "In Person" if o() < 0.85 else "Online",
                "campus": "CHARLES" if term.career != "LAW" else "LAW",
                "startDate": begin.isoformat(),
                "endDate": end.isoformat(),
                "status": "Active",
                "enrollment": {
                    "capacity": capacity,
                    "total": int(capacity * (0.3 + o() * 0.7)),
                    "waitlistTotal": int(o() * 10),
                },
                "meetings": [
                    {
                        "days": _DAYS[int(o() * len(_DAYS))],
                        "startTime": _STARTS[int(o() * len(_STARTS))],
                        "durationMinutes": 50 if o() < 0.5 else 75,
                        "building": _BUILDINGS[int(o() * len(_BUILDINGS))],
                        "room": str(100 + int(o() * 400)),
                    }
                ],
                "instructors": [{"name": f"{first} {last}", "role": "PI", "printInSchedule": True}],
                "lastUpdated": self._date(arrive - int(o() * 90)),
            }
            until = self._last_active_day(term, day)
            key = (*self._key(term, j), n)
            for k, change_day in enumerate(
                event_days(self.rates.course_change, arrive, until, *key, Tag.COURSE_CHANGE)
            ):
                _mutate(v2, mix(*key, Tag.COURSE_MUTATION, k), pools)
                v2["lastUpdated"] = self._date(change_day)
            result.append(v2)
        return result

    def _date(self, day: int) -> str:
        return (self.first_day + timedelta(days=day - 1)).isoformat()

    # truth -----------------------------------------------------------------------------------

    def changes(self, term: Term, day: int) -> dict[str, list[CourseKey]]:
        """Course rows on `day` and what happened to them since the day before."""
        live, changed, arrived, left = [], [], [], []
        for j in range(self.universe(term, day)):
            arrive = self._arrive_day(term, j)
            if arrive > day:
                continue
            cancel = self._cancel_day(term, j, arrive, day)
            if cancel is not None and cancel < day:
                continue
            keys = [
                (term.career, term.strm, v2["courseId"], v2["sessionCode"])
                for v2 in self.rows(term, j, day)
            ]
            if cancel == day:
                left.extend(keys)
                continue
            live.extend(keys)
            if arrive == day and day > 1:
                arrived.extend(keys)
                continue
            if day == self._last_active_day(term, day):
                for n, key in enumerate(keys):
                    walk = (*self._key(term, j), n, Tag.COURSE_CHANGE)
                    if happens_on(day, self.rates.course_change, arrive, *walk):
                        changed.append(key)
        return {"courses": live, "changed": changed, "arrived": arrived, "left": left}


def _mutate(v2: dict, h: int, pools: Pools) -> None:
    choice = h % 3
    h //= 3
    if choice == 0:
        enrollment = v2["enrollment"]
        enrollment["total"] = min(enrollment["capacity"], h % (enrollment["capacity"] + 1))
        enrollment["waitlistTotal"] = h % 7
    elif choice == 1:
        v2["meetings"][0]["room"] = str(100 + h % 400)
    else:
        first = pools.first_names_male[h % len(pools.first_names_male)]
        last = pools.last_names[(h // 1000) % len(pools.last_names)]
        v2["instructors"][0]["name"] = f"{first} {last}"
