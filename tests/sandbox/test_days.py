"""Days: determinism, what changes from one day to the next, and at which rates."""

from __future__ import annotations

import httpx
from tests.sandbox.wire import courses, persons, ps_query, ps_rows, sap_employees, vds_search

from dataload.sandbox.app import SandboxConfig, create_app
from dataload.sandbox.config import DayRates
from dataload.sandbox.truth import course_truth, person_truth, term_truth


def canonical(value: object) -> object:
    """Content regardless of key and array order (how the lake compares records)."""
    if isinstance(value, dict):
        return tuple(sorted((key, canonical(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("[]", tuple(sorted((canonical(item) for item in value), key=repr)))
    return value


async def every_answer(config: SandboxConfig) -> list[bytes]:
    transport = httpx.ASGITransport(app=create_app(config))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        truth = person_truth(config)
        ids = truth.persons[:80]
        answers = [
            await ps_query(client, "BU_TERM_QRY"),
            await ps_query(client, "BU_PARM_0216_QRY"),
            await ps_query(client, "BU_TERM_STD_FULL_TERM", {"BUID": truth.students[0]}),
            await courses(client, "2262"),
            await persons(client, ids),
            await sap_employees(client),
            await vds_search(client, "faculty"),
        ]
    return [answer.content for answer in answers]


async def test_same_seed_and_day_give_the_same_bytes_and_another_seed_does_not():
    first = await every_answer(SandboxConfig(people=200, day=3))
    again = await every_answer(SandboxConfig(people=200, day=3))
    assert first == again
    other = await every_answer(SandboxConfig(people=200, day=3, seed=7))
    # The calendar is the same for every seed; the people, courses and aliases are not.
    assert all(a != b for a, b in zip(first[1:], other[1:], strict=True))


BUSY = DayRates(
    person_change=0.1,
    person_shuffle=0.1,
    person_leave=0.05,
    person_return=0.3,
    person_arrival=0.03,
    course_change=0.2,
    course_cancel=0.05,
    course_arrival=0.05,
)


async def documents_by_id(client: httpx.AsyncClient, ids: list[str]) -> dict[str, dict]:
    return {d["personid"]: d for d in (await persons(client, ids)).json() if d}


async def check_person_truth_against_documents(config: SandboxConfig, day: int) -> dict:
    config.empty_object_rate = 0.0
    truth = person_truth(config, day)
    ids = sorted(set(person_truth(config, day - 1).persons) | set(truth.persons))
    transport = httpx.ASGITransport(app=create_app(config))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        config.day = day - 1
        before = await documents_by_id(client, ids)
        config.day = day
        after = await documents_by_id(client, ids)
    assert sorted(after) == sorted(truth.persons)
    assert sorted(set(after) - set(before)) == sorted(truth.arrived)
    assert sorted(set(before) - set(after)) == sorted(truth.left)
    both = set(before) & set(after)
    changed = {b for b in both if canonical(before[b]) != canonical(after[b])}
    reordered = {b for b in both - changed if before[b] != after[b]}
    assert changed == set(truth.changed)
    assert reordered == set(truth.shuffled)
    return {name: len(getattr(truth, name)) for name in ("changed", "shuffled", "arrived", "left")}


async def test_truth_of_changes_agrees_with_the_documents_served_on_consecutive_days():
    counts = await check_person_truth_against_documents(
        SandboxConfig(people=300, rates=BUSY), day=5
    )
    assert all(counts.values()), counts


async def test_students_change_when_the_next_term_starts():
    config = SandboxConfig(people=300, rates=DayRates(person_change=0, person_shuffle=0))
    # 2026-05-13, day 13: Spring 2026 has ended for UGRD and GRAD; their next term is listed.
    counts = await check_person_truth_against_documents(config, day=13)
    assert counts["changed"] > 0


def test_day_over_day_rates_match_the_documented_rates():
    config = SandboxConfig(people=2000)
    days = range(2, 12)
    totals = dict.fromkeys(("changed", "shuffled", "arrived", "left"), 0)
    for day in days:
        truth = person_truth(config, day)
        for name in totals:
            totals[name] += len(getattr(truth, name))
    per_day = {name: total / len(days) / 2000 for name, total in totals.items()}
    rates = config.rates
    assert abs(per_day["changed"] - rates.person_change) < 0.006
    assert abs(per_day["shuffled"] - rates.person_shuffle) < 0.004
    assert abs(per_day["left"] - rates.person_leave) < 0.0015
    assert rates.person_arrival <= per_day["arrived"] < rates.person_arrival + 0.0015


def test_the_current_term_advances_when_the_date_crosses_its_end():
    config = SandboxConfig()
    before, after = term_truth(config, 12), term_truth(config, 13)
    assert (before["date"], after["date"]) == ("2026-05-12", "2026-05-13")
    assert before["current"]["UGRD"] == "2262"
    assert after["current"]["UGRD"] == "2265"
    assert before["active_ugrd_terms"] == ["2258", "2262", "2265", "2266"]
    assert after["active_ugrd_terms"] == ["2262", "2265", "2266"]
    assert ["UGRD", "2265"] in after["changed"] and ["UGRD", "2262"] in after["changed"]


async def test_terms_a_year_ahead_appear_as_days_pass(client, config):
    first = {(r["ACAD_CAREER"], r["STRM"]) for r in ps_rows(await ps_query(client, "BU_TERM_QRY"))}
    appeared = next(day for day in range(2, 200) if term_truth(config, day)["arrived"])
    config.day = appeared
    later = {(r["ACAD_CAREER"], r["STRM"]) for r in ps_rows(await ps_query(client, "BU_TERM_QRY"))}
    assert first < later
    truth = term_truth(config)
    assert sorted(map(list, later - first)) == sorted(truth["arrived"])
    # Rows after an inserted term keep their content but move down: renumbered, not changed.
    assert truth["renumbered"]
    assert not set(map(tuple, truth["renumbered"])) & set(map(tuple, truth["changed"]))


async def test_course_truth_agrees_with_the_courses_served_on_consecutive_days():
    config = SandboxConfig(people=50, courses_per_term=80, rates=BUSY)
    day = 6
    term = course_truth(config, day)["terms"][1]

    async def rows(client: httpx.AsyncClient) -> dict[tuple, dict]:
        return {
            (
                d["termDetails"]["academicCareer"],
                term,
                c["v2"]["courseId"],
                c["v2"]["sessionCode"],
            ): c["v2"]
            for d in (await courses(client, term)).json()
            for c in d["courses"]
        }

    transport = httpx.ASGITransport(app=create_app(config))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        config.day = day - 1
        before = await rows(client)
        config.day = day
        after = await rows(client)
    truth = course_truth(config, day, [term])
    as_set = lambda keys: {tuple(k) for k in keys}  # noqa: E731
    assert set(after) == as_set(truth["courses"])
    assert set(after) - set(before) == as_set(truth["arrived"])
    assert set(before) - set(after) == as_set(truth["left"])
    changed = {k for k in set(before) & set(after) if before[k] != after[k]}
    assert changed == as_set(truth["changed"])
    assert changed and truth["arrived"] and truth["left"]


def test_courses_of_a_term_that_has_ended_no_longer_change():
    config = SandboxConfig(people=50, rates=BUSY)
    ended = "2258"  # Fall 2025, over before day 1
    for day in (2, 3, 4):
        truth = course_truth(config, day, [ended])
        assert truth["courses"]
        assert truth["changed"] == truth["arrived"] == truth["left"] == []
