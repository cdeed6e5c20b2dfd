"""The clients against the sandbox over real HTTP: data as the sandbox's truth says, and the
production misbehaviours it simulates (faults, 429s, wrong credentials, login pages)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest

from dataload.sandbox.app import Faults
from dataload.sandbox.server import SandboxHandle
from dataload.sandbox.truth import course_truth, person_truth, term_truth
from dataload.settings import Settings
from dataload.sources import (
    PeopleSoft,
    RetryPolicy,
    Sap,
    SnapLogicCourses,
    SnapLogicPersons,
    SourceAuthError,
    SourceServerError,
    Vds,
    timeouts,
)
from dataload.sources.snaplogic import is_sensitive_field

RETRY = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.1, max_retry_after=2.0)
WRONG = "wrong-Secret-Value-42"


def endpoint_requests(sandbox: SandboxHandle, name: str) -> int:
    return sandbox.stats.snapshot()["endpoints"].get(name, {}).get("requests", 0)


def sensitive_keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [k for k in value if is_sensitive_field(k)]
        return found + [k for v in value.values() for k in sensitive_keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in sensitive_keys(v)]
    return []


async def test_terms_are_the_days_term_rows_without_aliases(sandbox, sandbox_settings):
    async with PeopleSoft.from_settings(sandbox_settings, retry=RETRY) as ps:
        rows = await ps.terms()
    assert rows == term_truth(sandbox.config)["rows"]
    assert not any("." in name for row in rows for name in row)


async def test_student_ids_and_their_uid_car_term_rows(sandbox, sandbox_settings):
    truth = person_truth(sandbox.config)
    async with PeopleSoft.from_settings(sandbox_settings, retry=RETRY) as ps:
        students = await ps.student_ids()
        rows = await asyncio.gather(*(ps.uid_car_term(buid) for buid in students[:20]))
        unknown = await ps.uid_car_term("U00000000")
    assert students == truth.students
    for buid, person_rows in zip(students[:20], rows, strict=True):
        assert person_rows, f"student {buid} has no uidCarTerm rows"
        assert {row["CAMPUS_ID"] for row in person_rows} == {buid}
        assert {"ACAD_CAREER", "STRM", "attr:rownumber"} <= set(person_rows[0])
    assert unknown == []


async def test_courses_of_the_active_terms_are_one_record_per_key(sandbox, sandbox_settings):
    truth = course_truth(sandbox.config)
    async with SnapLogicCourses.from_settings(sandbox_settings, retry=RETRY) as api:
        per_term = await asyncio.gather(*(api.courses(term) for term in truth["terms"]))
    records = [record for term_records in per_term for record in term_records]
    keys = [[r["academicCareer"], r["termCode"], r["courseId"], r["sessionCode"]] for r in records]
    assert sorted(keys) == sorted(truth["courses"])
    assert len({tuple(k) for k in keys}) == len(keys)


async def test_person_documents_are_sanitised_and_empty_ones_counted(sandbox, sandbox_settings):
    sandbox.config.empty_object_rate = 0.3
    truth = person_truth(sandbox.config)
    people = truth.flow_ids[:60]
    async with PeopleSoft.from_settings(sandbox_settings, retry=RETRY) as ps:
        rows_per_person = await asyncio.gather(*(ps.uid_car_term(buid) for buid in people))
    uid_car_term = [
        row
        for buid, rows in zip(people, rows_per_person, strict=True)
        for row in (rows or [{"CAMPUS_ID": buid}])
    ]
    async with SnapLogicPersons.from_settings(sandbox_settings, retry=RETRY) as api:
        batch = await api.persons(uid_car_term)
    assert sorted(r["personid"] for r in batch.records) == sorted(people)
    assert batch.dropped_empty > 0
    assert sensitive_keys(batch.records) == []


async def test_active_employees_from_sap(sandbox, sandbox_settings):
    async with Sap.from_settings(sandbox_settings, retry=RETRY) as sap:
        assert await sap.active_employee_ids() == person_truth(sandbox.config).employees_active


async def test_vds_faculty_and_staff_over_several_pages(sandbox, sandbox_settings):
    truth = person_truth(sandbox.config)
    async with Vds.from_settings(sandbox_settings, retry=RETRY) as vds:
        faculty = await vds.person_ids("faculty")
        staff = await vds.person_ids("staff")
        requests = vds.stats.requests
    assert (faculty, staff) == (truth.faculty, truth.staff)
    assert requests > 2  # at least one of them took several pages


@pytest.mark.parametrize(
    ("make", "call", "endpoint", "variables"),
    [
        (
            lambda s: PeopleSoft.from_settings(s, password=WRONG, retry=RETRY),
            lambda c: c.terms(),
            "peoplesoft.BU_TERM_QRY",
            "check PEOPLE_SOFT_USER/PEOPLE_SOFT_PASS",
        ),
        (
            lambda s: SnapLogicCourses.from_settings(s, key=WRONG, retry=RETRY),
            lambda c: c.courses("2268"),
            "snaplogic.course",
            "check SNAPLOGIC_COURSE_KEY",
        ),
        (
            lambda s: SnapLogicPersons.from_settings(s, key=WRONG, retry=RETRY),
            lambda c: c.persons([{"CAMPUS_ID": "U1"}]),
            "snaplogic.person",
            "check SNAPLOGIC_PERSON_KEY",
        ),
        (
            lambda s: Sap.from_settings(s, key=WRONG, retry=RETRY),
            lambda c: c.active_employee_ids(),
            "sap.employees",
            "check SAP_KEY",
        ),
        (
            lambda s: Vds.from_settings(s, password=WRONG, retry=RETRY),
            lambda c: c.person_ids("faculty"),
            "vds.search",
            "check VDS_USERNAME/VDS_PASSWORD",
        ),
    ],
)
async def test_wrong_credentials_fail_at_once_with_the_variables_to_check(
    sandbox, sandbox_settings, caplog, make, call, endpoint, variables
):
    caplog.set_level(logging.DEBUG, logger="dataload.sources")
    async with make(sandbox_settings) as client:
        with pytest.raises(SourceAuthError) as raised:
            await call(client)
    message = str(raised.value)
    assert message.endswith(f"answered 401 Unauthorized: {variables}")
    assert sandbox.base_url in message
    assert WRONG not in message + caplog.text
    assert endpoint_requests(sandbox, endpoint) == 1


async def test_wrong_credentials_under_concurrent_calls_cause_no_retry_storm(
    sandbox, sandbox_settings
):
    sandbox.config.credentials = dataclasses.replace(
        sandbox.config.credentials, peoplesoft_password="rotated"
    )
    async with PeopleSoft.from_settings(sandbox_settings, retry=RETRY) as ps:
        outcomes = await asyncio.gather(
            *(ps.uid_car_term(f"U{i:08d}") for i in range(300)), return_exceptions=True
        )
    assert all(isinstance(o, SourceAuthError) for o in outcomes)
    # At most the calls already in flight on the pool's 10 connections reach the server.
    assert endpoint_requests(sandbox, "peoplesoft.BU_TERM_STD_FULL_TERM") <= 10


async def test_a_login_page_instead_of_json_is_an_auth_error(sandbox, sandbox_settings):
    sandbox.config.endpoint_faults["peoplesoft"] = Faults(html_login_rate=1.0)
    async with PeopleSoft.from_settings(sandbox_settings, retry=RETRY) as ps:
        with pytest.raises(SourceAuthError, match="HTML page"):
            await ps.student_ids()
    assert endpoint_requests(sandbox, "peoplesoft.BU_PARM_0216_QRY") == 1


async def test_ten_percent_transient_faults_are_survived_through_retries(sandbox, caplog):
    caplog.set_level(logging.DEBUG, logger="dataload.sources")
    secrets = {
        "peoplesoft_password": "ps-Secret-1",
        "snaplogic_person_key": "snap-Secret-2",
        "sap_key": "sap-Secret-3",
        "vds_password": "vds-Secret-4",
    }
    sandbox.config.credentials = dataclasses.replace(sandbox.config.credentials, **secrets)
    sandbox_settings = Settings(_env_file=None, **sandbox.env())
    truth = person_truth(sandbox.config)
    people = truth.students[:150]
    sandbox.config.hang_s = 2.0
    sandbox.config.faults = Faults(http_5xx_rate=0.05, malformed_json_rate=0.04, hang_rate=0.01)
    quick = {"retry": RETRY, "timeout": timeouts(read=0.5)}
    async with PeopleSoft.from_settings(sandbox_settings, **quick) as ps:
        rows = await asyncio.gather(*(ps.uid_car_term(buid) for buid in people))
        ids = await ps.student_ids()
        ps_stats = ps.stats
    async with SnapLogicPersons.from_settings(sandbox_settings, **quick) as api:
        batches = await asyncio.gather(
            *(api.persons([{"CAMPUS_ID": buid}]) for buid in people[:40])
        )
    async with Sap.from_settings(sandbox_settings, **quick) as sap:
        active = await sap.active_employee_ids()
    async with Vds.from_settings(sandbox_settings, **quick) as vds:
        faculty = await vds.person_ids("faculty")
    assert all(r and r[0]["CAMPUS_ID"] == buid for buid, r in zip(people, rows, strict=True))
    assert ids == truth.students
    assert [b.records[0]["personid"] for b in batches] == people[:40]
    assert (active, faculty) == (truth.employees_active, truth.faculty)
    assert ps_stats.retries > 0
    assert sandbox.stats.snapshot()["faults"] > 0
    assert "retrying in" in caplog.text
    assert not any(secret in caplog.text for secret in secrets.values())


async def test_persistent_server_errors_fail_clearly_after_bounded_retries(
    sandbox, sandbox_settings
):
    sandbox.config.endpoint_faults["sap"] = Faults(http_5xx_rate=1.0)
    async with Sap.from_settings(sandbox_settings, retry=RETRY) as sap:
        with pytest.raises(SourceServerError) as raised:
            await sap.active_employee_ids()
    assert endpoint_requests(sandbox, "sap.employees") == RETRY.max_attempts
    message = str(raised.value)
    assert message.startswith(f"SAP employee list at {sandbox.base_url}/sap answered 50")
    assert "(gave up after 6 attempts): the service is failing" in message


async def test_snaplogic_429s_are_waited_out_as_retry_after_says(sandbox, sandbox_settings):
    sandbox.config.snaplogic_concurrency_limit = 2
    sandbox.config.endpoint_latency["snaplogic.course"] = dataclasses.replace(
        sandbox.config.latency, ms=150.0
    )
    terms = term_truth(sandbox.config)["active_ugrd_terms"]
    expected = course_truth(sandbox.config)["courses"]
    async with SnapLogicCourses.from_settings(
        sandbox_settings, retry=RETRY, max_connections=6
    ) as api:
        per_term = await asyncio.gather(*(api.courses(t) for t in [*terms, *terms]))
        stats = api.stats
    assert stats.by_status[429] > 0
    assert stats.retries >= stats.by_status[429]
    keys = {
        (r["academicCareer"], r["termCode"], r["courseId"], r["sessionCode"])
        for records in per_term
        for r in records
    }
    assert keys == {tuple(k) for k in expected}


async def test_a_client_never_has_more_calls_in_flight_than_its_connections(
    sandbox, sandbox_settings
):
    sandbox.config.endpoint_latency["peoplesoft"] = dataclasses.replace(
        sandbox.config.latency, ms=10.0
    )
    students = person_truth(sandbox.config).students[:60]
    async with PeopleSoft.from_settings(sandbox_settings, retry=RETRY, max_connections=3) as ps:
        await asyncio.gather(*(ps.uid_car_term(buid) for buid in students))
    stats = sandbox.stats.snapshot()["endpoints"]["peoplesoft.BU_TERM_STD_FULL_TERM"]
    assert stats["requests"] == 60
    assert stats["max_in_flight"] == 3


async def test_snaplogic_accepts_the_key_as_a_bearer_token(sandbox, sandbox_settings):
    term = term_truth(sandbox.config)["active_ugrd_terms"][0]
    async with SnapLogicCourses.from_settings(
        sandbox_settings, auth_scheme="bearer", retry=RETRY
    ) as api:
        assert await api.courses(term)
