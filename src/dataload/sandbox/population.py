"""Who exists: people by index, their BUIDs, roles, presence on a day and student careers.

Person `i` is a pure function of (seed, i): nothing per person is stored. People 0..people-1
are present on day 1; from day 2 on, `people * person_arrival` new indexes arrive per day.
Each person alternates between present and gone (geometric stays with `person_leave` and
`person_return` per day), and is gone from every source at once while away.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import cache

from dataload.sandbox.arrivals import Arrivals
from dataload.sandbox.calendar import Calendar, Term
from dataload.sandbox.config import DayRates
from dataload.sandbox.rng import Tag, mix, mix_from

__all__ = [
    "ACTIVE",
    "Population",
    "Roles",
    "StudentCareer",
]

ACTIVE = "3 - Active"
_INACTIVE = ("0 - Withdrawn", "1 - Inactive", "2 - Retiree")
_ID_SPACE = 10**8
_TO_UNIT = 1.0 / (1 << 53)


_PROGRAM_TERMS = {"UGRD": 8, "GRAD": 4, "LAW": 6}  # regular (Spring, Fall) terms
PROGRAMS = {
    "UGRD": ("UCAS", "UENG", "UQST", "UCOM", "USAR", "UCFA", "UCDS"),
    "GRAD": ("GGRS", "GENG", "GQST", "GSPH", "GMET"),
    "LAW": ("LLAW",),
}


@dataclass(frozen=True, slots=True)
class Roles:
    primary: str  # the VDS PersonPrimaryAffiliation: student, faculty, staff or affiliate
    student: bool
    employee: bool
    emp_status: str | None  # SAP EMP_STATUS when employee

    @property
    def active_employee(self) -> bool:
        return self.emp_status == ACTIVE


def _share(p: float) -> int:
    return int(p * 0x10000)


# Cumulative shares of primary affiliations, then the chance of a second role, in 1/65536.
_PRIMARY = (
    ("student", _share(0.62)),
    ("faculty", _share(0.70)),
    ("staff", _share(0.90)),
    ("affiliate", 0x10000),
)
_ALSO_STUDENT = {
    "student": 0x10000,
    "faculty": _share(0.02),
    "staff": _share(0.06),
    "affiliate": _share(0.05),
}
_ALSO_EMPLOYEE = {
    "student": _share(0.12),
    "faculty": _share(0.95),
    "staff": _share(0.97),
    "affiliate": _share(0.5),
}
_ACTIVE_SHARE = _share(0.92)


@cache
def _roles(primary: str, student: bool, employee: bool, status: str | None) -> Roles:
    return Roles(primary, student, employee, status)


@dataclass(frozen=True, slots=True)
class StudentCareer:
    career: str
    program: str
    admit: int  # index into Calendar.terms(career)
    last: int  # the last regular term of the program


def _affine(seed: int, tag: int) -> tuple[int, int, int]:
    """(a, b, a^-1) of a bijection i -> (a*i + b) mod 10^8 that scatters IDs."""
    a = (mix(seed, tag, 0) % _ID_SPACE) | 1
    while a % 5 == 0:
        a += 2
    return a, mix(seed, tag, 1) % _ID_SPACE, pow(a, -1, _ID_SPACE)


class Population:
    def __init__(
        self, seed: int, people: int, rates: DayRates, calendar: Calendar, first_day: date
    ) -> None:
        self.seed = seed
        self.people = people
        self.calendar = calendar
        self._arrivals = Arrivals(people * rates.person_arrival)
        self._log_leave = math.log1p(-rates.person_leave) if 0 < rates.person_leave < 1 else None
        self._log_return = math.log1p(-rates.person_return) if 0 < rates.person_return < 1 else None
        self._presence = mix(seed, Tag.PRESENCE)
        self._role = mix(seed, Tag.ROLE)
        self._career = mix(seed, Tag.CAREER)
        self._summer = mix(seed, Tag.SUMMER)
        self._buid = _affine(seed, Tag.BUID)
        self._emplid = _affine(seed, Tag.EMPLID)
        self._regular = {
            career: [i for i, t in enumerate(calendar.terms(career)) if not t.is_summer]
            for career in _PROGRAM_TERMS
        }
        self._start_regular = {
            career: bisect_left(self._regular[career], calendar.current_index(career, first_day))
            for career in _PROGRAM_TERMS
        }

    # identity -------------------------------------------------------------------------------

    def universe(self, day: int) -> int:
        """How many indexes exist by `day` (present or not)."""
        return self.people + self._arrivals.by(day)

    def arrive_day(self, i: int) -> int:
        return 1 if i < self.people else self._arrivals.day_of(i - self.people + 1)

    def buid(self, i: int) -> str:
        a, b, _ = self._buid
        return f"U{(a * i + b) % _ID_SPACE:08d}"

    def emplid(self, i: int) -> str:
        a, b, _ = self._emplid
        return f"{(a * i + b) % _ID_SPACE:08d}"

    def index_of(self, buid: str) -> int | None:
        """The index behind a BUID, or None if it is not one of ours."""
        if len(buid) != 9 or buid[0] not in "Uu" or not buid[1:].isdigit():
            return None
        _, b, inverse = self._buid
        return ((int(buid[1:]) - b) * inverse) % _ID_SPACE

    # presence -------------------------------------------------------------------------------

    def present(self, i: int, day: int) -> bool:
        arrive = self.arrive_day(i)
        if day < arrive:
            return False
        here, when, k = True, arrive, 0
        while True:
            log_miss = self._log_leave if here else self._log_return
            if log_miss is None:
                return here
            u = (mix_from(self._presence, i, k) >> 11) * _TO_UNIT
            when += 1 + int(math.log1p(-u) / log_miss)
            if when > day:
                return here
            here, k = not here, k + 1

    def present_indexes(self, day: int) -> Iterator[int]:
        for i in range(self.universe(day)):
            if self.present(i, day):
                yield i

    # roles ----------------------------------------------------------------------------------

    def roles(self, i: int) -> Roles:
        # One hash gives four 16-bit draws: roles are read for every person of every list.
        h = mix_from(self._role, i)
        draw = h & 0xFFFF
        for primary, below in _PRIMARY:  # noqa: B007 - the loop picks `primary`
            if draw < below:
                break
        student = ((h >> 16) & 0xFFFF) < _ALSO_STUDENT[primary]
        employee = ((h >> 32) & 0xFFFF) < _ALSO_EMPLOYEE[primary]
        status = None
        if employee:
            draw = (h >> 48) & 0xFFFF
            active = primary != "affiliate" and draw < _ACTIVE_SHARE
            status = ACTIVE if active else _INACTIVE[draw % len(_INACTIVE)]
        return _roles(primary, student, employee, status)

    # student careers ------------------------------------------------------------------------

    def careers(self, i: int) -> list[StudentCareer]:
        """A student's careers (one, sometimes UGRD and GRAD together)."""
        h = mix_from(self._career, i)  # 16-bit draws, as for roles
        draw = h & 0xFFFF
        names = ["UGRD"] if draw < _share(0.70) else ["GRAD"] if draw < _share(0.94) else ["LAW"]
        if names == ["UGRD"] and (h >> 16) & 0xFFFF < _share(0.04):
            names.append("GRAD")
        result = []
        for n, career in enumerate(names):
            bits = (h >> (32 + 16 * n)) & 0xFFFF
            length = _PROGRAM_TERMS[career]
            standing = (bits & 0xFF) * length >> 8
            first = max(self._start_regular[career] - standing, 0)
            regular = self._regular[career]
            programs = PROGRAMS[career]
            program = programs[(bits >> 8) * len(programs) >> 8]
            result.append(
                StudentCareer(career, program, regular[first], regular[first + length - 1])
            )
        return result

    def student_terms(self, i: int, careers: list[StudentCareer], when: date) -> list[Term]:
        """The terms a student is enrolled in by `when`: admit term up to the next term."""
        terms: list[Term] = []
        for sc in careers:
            all_terms = self.calendar.terms(sc.career)
            last = min(sc.last, self.calendar.current_index(sc.career, when) + 1)
            for index in range(sc.admit, last + 1):
                term = all_terms[index]
                if term.is_summer and mix_from(self._summer, i, index) & 0xFF >= 64:
                    continue
                terms.append(term)
        return terms
