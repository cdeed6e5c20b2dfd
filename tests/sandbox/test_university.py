"""The synthetic university's pure logic: identities, roles, calendar, event streams."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date
from itertools import pairwise

from dataload.sandbox.calendar import Calendar
from dataload.sandbox.config import SandboxConfig
from dataload.sandbox.rng import event_days, happens_on
from dataload.sandbox.university import university_for
from dataload.sandbox.vocabulary import iso_date


def test_buids_are_a_bijection_of_person_indexes_even_at_200000_people():
    population = university_for(SandboxConfig(people=200_000)).population
    for i in [0, 1, 199_999, *random.Random(3).sample(range(200_000), 500)]:
        buid = population.buid(i)
        assert len(buid) == 9 and buid[0] == "U" and buid[1:].isdigit()
        assert population.index_of(buid) == i
    assert len({population.buid(i) for i in range(50_000)}) == 50_000
    assert population.index_of("X12345678") is None


def test_the_last_of_200000_people_is_served_without_enumerating_anyone():
    university = university_for(SandboxConfig(people=200_000))
    last = 199_999
    assert university.population.present(last, 1)
    document = university.persons.document(last, 1)
    assert document["personid"] == university.population.buid(last)


def test_roles_overlap_in_the_documented_shares():
    population = university_for(SandboxConfig(people=20_000)).population
    roles = [population.roles(i) for i in range(20_000)]
    primary = Counter(r.primary for r in roles)
    assert 0.60 < primary["student"] / 20_000 < 0.64
    assert 0.07 < primary["faculty"] / 20_000 < 0.09
    assert sum(1 for r in roles if r.student and r.active_employee) > 1000
    assert sum(1 for r in roles if r.primary == "staff" and r.student) > 100
    assert sum(1 for r in roles if r.employee and not r.active_employee) > 500


def test_strm_codes_seasons_and_dates_of_a_year():
    terms = [t for t in Calendar(date(2026, 5, 1)).terms("UGRD") if t.year == 2026]
    assert [(t.strm, t.descr, t.is_summer) for t in terms] == [
        ("2262", "Spring 2026", False),
        ("2265", "Summer 1 2026", True),
        ("2266", "Summer 2 2026", True),
        ("2268", "Fall 2026", False),
    ]
    assert all(a.end < b.begin for a, b in pairwise(terms))
    assert terms[3].acad_year == "2027" and terms[0].acad_year == "2026"


def test_event_streams_happen_at_their_rate_and_are_reproducible():
    days = [list(event_days(0.05, 1, 2000, 7, n)) for n in range(200)]
    share = sum(len(d) for d in days) / (200 * 1999)
    assert 0.045 < share < 0.055
    assert days[3] == list(event_days(0.05, 1, 2000, 7, 3))
    assert all(happens_on(day, 0.05, 1, 7, 3) for day in days[3])
    quiet = [day for day in range(2, 100) if day not in days[3]]
    assert not any(happens_on(day, 0.05, 1, 7, 3) for day in quiet)


def test_people_who_leave_may_come_back():
    config = SandboxConfig(people=5000)
    population = university_for(config).population
    returned = [
        i for i in range(5000) if not population.present(i, 20) and population.present(i, 60)
    ]
    assert returned


def test_iso_date_table_agrees_with_date_arithmetic():
    assert iso_date(2026, 0) == "2026-01-01"
    assert iso_date(2024, 59) == "2024-02-29"
    assert iso_date(1950, 14600) == date(1989, 12, 22).isoformat()
