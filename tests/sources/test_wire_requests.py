"""Each client sends exactly the request the contract documents and reads its documented answer.

Served by the scripted server over a real socket, so the assertions see what went on the wire.
"""

from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import parse_qs, parse_qsl

import pytest
from tests.sources.scripted_http import FAST_RETRY, ScriptedServer, Step

from dataload.settings import Settings
from dataload.sources import (
    PeopleSoft,
    Sap,
    SnapLogicCourses,
    SnapLogicPersons,
    SourceMalformedResponse,
    SourceResponseError,
    Vds,
)

PS_PATH = "/ps/PSIGW/RESTListeningConnector/PSFT_CS/ExecuteQuery.v1/PUBLIC/{}/JSON/NONFILE"


def ps_body(rows, numrows=None):
    return {
        "status": "success",
        "data": {
            "query": {
                "numrows": len(rows) if numrows is None else numrows,
                "queryname": "Q",
                "rows": rows,
            }
        },
    }


def settings(base_url: str, **extra: str) -> Settings:
    env = {
        "PEOPLE_SOFT_URL": f"{base_url}/ps/",
        "PEOPLE_SOFT_USER": "ps-user",
        "PEOPLE_SOFT_PASS": "ps-pass",
        "SNAPLOGIC_COURSE_URL": f"{base_url}/snaplogic/course",
        "SNAPLOGIC_COURSE_KEY": "course-key",
        "SNAPLOGIC_PERSON_URL": f"{base_url}/snaplogic/person",
        "SNAPLOGIC_PERSON_KEY": "person-key",
        "SAP_URL": f"{base_url}/sap",
        "SAP_KEY": "sap-key",
        "VDS_URL": f"{base_url}/vds",
        "VDS_USERNAME": "vds-user",
        "VDS_PASSWORD": "vds-pass",
        "CS_ENV": "qas",
        **extra,
    }
    return Settings(_env_file=None, **env)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_peoplesoft_query_url_auth_and_prompts(scripted: ScriptedServer):
    scripted.reset(
        Step(json=ps_body([{"attr:rownumber": 1, "A.CAMPUS_ID": "U1", "A.STRM": "2268"}]))
    )
    async with PeopleSoft.from_settings(settings(scripted.base_url), retry=FAST_RETRY) as ps:
        rows = await ps.uid_car_term("U1")
    assert rows == [{"attr:rownumber": 1, "CAMPUS_ID": "U1", "STRM": "2268"}]
    (request,) = scripted.received
    assert request.method == "GET"
    assert request.path == PS_PATH.format("BU_TERM_STD_FULL_TERM")
    assert request.query == (
        "isconnectedquery=N&maxrows=0&json_resp=true"
        "&prompt_uniquepromptname=BUID&prompt_fieldvalue=U1"
    )
    assert request.headers["authorization"] == basic("ps-user", "ps-pass")


async def test_peoplesoft_sends_several_prompts_as_two_matching_lists(scripted: ScriptedServer):
    scripted.reset(Step(json=ps_body([])))
    async with PeopleSoft.from_settings(settings(scripted.base_url), retry=FAST_RETRY) as ps:
        assert await ps.query("SOME_QRY", {"EMPLID": "U 1/x", "STRM": "2268"}) == []
    query = dict(parse_qsl(scripted.received[0].query))
    assert query["prompt_uniquepromptname"] == "EMPLID,STRM"
    assert query["prompt_fieldvalue"] == "U 1/x,2268"


async def test_peoplesoft_refuses_prompt_values_it_cannot_send(scripted: ScriptedServer):
    async with PeopleSoft.from_settings(settings(scripted.base_url)) as ps:
        with pytest.raises(ValueError, match="comma"):
            await ps.query("SOME_QRY", {"BUID": "U1,U2"})
        with pytest.raises(ValueError, match="query name"):
            await ps.query("../../etc", None)
    assert scripted.received == []


async def test_peoplesoft_base_url_defaults_to_the_cs_env_host():
    ps = PeopleSoft.from_settings(Settings(_env_file=None, CS_ENV="qas"))
    assert ps.query_url("BU_TERM_QRY").startswith(
        "https://csqas.bu.edu/PSIGW/RESTListeningConnector/PSFT_CS/ExecuteQuery.v1/PUBLIC/BU_TERM_QRY/"
    )
    await ps.aclose()


async def test_student_ids_are_deduplicated_in_first_seen_order(scripted: ScriptedServer):
    rows = [
        {"attr:rownumber": i, "A.CAMPUS_ID": v}
        for i, v in enumerate(["U3", "U1", "U3", " U2 ", "", None])
    ]
    scripted.reset(Step(json=ps_body(rows)))
    async with PeopleSoft.from_settings(settings(scripted.base_url), retry=FAST_RETRY) as ps:
        assert await ps.student_ids() == ["U3", "U1", "U2"]
    assert scripted.received[0].path == PS_PATH.format("BU_PARM_0216_QRY")


async def test_a_student_row_without_campus_id_is_refused_however_the_list_is_decoded(
    scripted: ScriptedServer,
):
    rows = [{"attr:rownumber": 1, "A.CAMPUS_ID": "U1"}, {"attr:rownumber": 2, "EMPLID": "7"}]
    scripted.reset(Step(json=ps_body(rows)))
    async with PeopleSoft.from_settings(settings(scripted.base_url), retry=FAST_RETRY) as ps:
        with pytest.raises(SourceResponseError, match="a row without CAMPUS_ID"):
            await ps.student_ids()


async def test_an_id_list_that_is_not_utf8_is_malformed_not_a_crash(scripted: ScriptedServer):
    scripted.reset(default=Step(200, body=b'{"ET_EMP_LIST": [{"BUID": "U\xff"}]}'))
    async with Sap(url=f"{scripted.base_url}/sap", key="k", retry=FAST_RETRY) as sap:
        with pytest.raises(SourceMalformedResponse, match="not valid JSON"):
            await sap.active_employee_ids()


async def test_terms_come_from_bu_term_qry(scripted: ScriptedServer):
    row = {"attr:rownumber": 1, "A.ACAD_CAREER": "UGRD", "A.STRM": "2268", "A.CURRENT_IND": "Y"}
    scripted.reset(Step(json=ps_body([row])))
    async with PeopleSoft.from_settings(settings(scripted.base_url), retry=FAST_RETRY) as ps:
        assert await ps.terms() == [
            {"attr:rownumber": 1, "ACAD_CAREER": "UGRD", "STRM": "2268", "CURRENT_IND": "Y"}
        ]
    assert scripted.received[0].path == PS_PATH.format("BU_TERM_QRY")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"status": "fail", "data": {"message": "Query BU_X does not exist"}},
            "status 'fail' (Query BU_X does not exist)",
        ),
        ({"status": "success", "data": {}}, "without a data.query.rows list"),
        (
            {"status": "success", "data": {"query": {"rows": [1, 2]}}},
            "without a data.query.rows list",
        ),
        ([{"status": "success"}], "not an object"),
        (ps_body([{"A.STRM": "1"}], numrows=2), "announced 2 rows but sent 1"),
    ],
)
async def test_peoplesoft_answers_of_another_shape_fail_without_retry(
    scripted: ScriptedServer, body, message
):
    scripted.reset(Step(json=body))
    async with PeopleSoft.from_settings(settings(scripted.base_url), retry=FAST_RETRY) as ps:
        with pytest.raises(SourceResponseError) as raised:
            await ps.terms()
    assert message in str(raised.value)
    assert "PeopleSoft query BU_TERM_QRY at http://127.0.0.1:" in str(raised.value)
    assert len(scripted.received) == 1


async def test_course_request_and_flat_records(scripted: ScriptedServer):
    doc = {
        "termDetails": {"academicCareer": "UGRD", "term": {"code": "2268"}},
        "courses": [{"v2": {"courseId": 123456, "sessionCode": "1", "title": "Calculus"}}],
    }
    scripted.reset(Step(json=[doc]))
    async with SnapLogicCourses.from_settings(settings(scripted.base_url), retry=FAST_RETRY) as api:
        records = await api.courses("2268")
    assert records == [
        {
            "courseId": 123456,
            "sessionCode": "1",
            "title": "Calculus",
            "academicCareer": "UGRD",
            "termCode": "2268",
        }
    ]
    (request,) = scripted.received
    assert (request.method, request.path) == ("GET", "/snaplogic/course")
    assert parse_qs(request.query) == {"term": ["2268"], "csEnv": ["qas"]}
    assert request.headers["x-api-key"] == "course-key"
    assert "authorization" not in request.headers


async def test_course_document_of_another_shape_names_the_term(scripted: ScriptedServer):
    scripted.reset(Step(json=[{"termDetails": {}, "courses": []}]))
    async with SnapLogicCourses.from_settings(settings(scripted.base_url), retry=FAST_RETRY) as api:
        with pytest.raises(
            SourceResponseError,
            match=r"SnapLogic course API \(term 2271\) at .*document 0 without termDetails",
        ):
            await api.courses("2271")
    assert len(scripted.received) == 1


async def test_snaplogic_can_send_the_key_as_a_bearer_token(scripted: ScriptedServer):
    scripted.reset(Step(json=[]))
    async with SnapLogicCourses.from_settings(
        settings(scripted.base_url), auth_scheme="bearer"
    ) as api:
        assert await api.courses("2268") == []
    assert scripted.received[0].headers["authorization"] == "Bearer course-key"
    assert "x-api-key" not in scripted.received[0].headers


async def test_person_request_carries_uidcarterm_rows_as_json_text(scripted: ScriptedServer):
    documents = [
        {"personid": "U1", "ssn": "1", "studentInfo": {"finAidAward": 5, "gpa": 3.9}},
        {},
        None,
        {"personid": "", "x": 1},
        {"personid": "U2", "personBasic": {"sexualOrientation": "x", "name": "B"}},
    ]
    scripted.reset(Step(json=documents))
    rows = [{"CAMPUS_ID": "U1", "ACAD_CAREER": "UGRD", "STRM": "2268"}, {"CAMPUS_ID": "U2"}]
    async with SnapLogicPersons.from_settings(settings(scripted.base_url), retry=FAST_RETRY) as api:
        batch = await api.persons(rows)
    assert batch.records == [
        {"personid": "U1", "studentInfo": {"gpa": 3.9}},
        {"personid": "U2", "personBasic": {"name": "B"}},
    ]
    assert batch.dropped_empty == 3
    (request,) = scripted.received
    assert (request.method, request.path) == ("POST", "/snaplogic/person")
    assert parse_qs(request.query) == {
        "objects": ["['student','affiliate','faculty','employee']"],
        "csEnv": ["qas"],
    }
    assert request.headers["x-api-key"] == "person-key"
    sent = json.loads(request.body)
    assert list(sent) == ["uidCarTerm"]
    assert json.loads(sent["uidCarTerm"]) == rows


async def test_person_call_with_no_rows_sends_nothing(scripted: ScriptedServer):
    async with SnapLogicPersons.from_settings(settings(scripted.base_url)) as api:
        batch = await api.persons([])
    assert (batch.records, batch.dropped_empty, scripted.received) == ([], 0, [])


async def test_person_answer_that_is_not_an_array_of_documents_is_an_error(
    scripted: ScriptedServer,
):
    # A document of the array that is not an object costs that document only
    # (test_hostile_documents.py); an answer that is no array at all is an error.
    scripted.reset(Step(json={"personid": "U1"}))
    async with SnapLogicPersons.from_settings(settings(scripted.base_url), retry=FAST_RETRY) as api:
        with pytest.raises(SourceResponseError, match="answered JSON that is not an array"):
            await api.persons([{"CAMPUS_ID": "U1"}])


async def test_sap_request_and_active_employees(scripted: ScriptedServer):
    employees = [
        {"BUID": "U1", "EMP_STATUS": "3 - Active"},
        {"BUID": "U2", "EMP_STATUS": "0 - Withdrawn"},
        {"BUID": "U3", "EMP_STATUS": "3 - Active"},
        {"BUID": "U1", "EMP_STATUS": "3 - Active"},
        {"EMP_STATUS": "3 - Active"},
    ]
    scripted.reset(Step(json={"ET_EMP_LIST": employees}))
    async with Sap.from_settings(settings(scripted.base_url), retry=FAST_RETRY) as sap:
        assert await sap.active_employee_ids() == ["U1", "U3"]
    (request,) = scripted.received
    assert (request.method, request.path) == ("POST", "/sap")
    assert parse_qs(request.query) == {"BAPIName": ["Z_HR_EMPLOYEE_OBJ_LIST"], "account": ["HR"]}
    assert request.headers["x-api-key"] == "sap-key"
    assert json.loads(request.body) == {}


def vds_page(ids, cookie):
    resources = [{"dn": f"uid={i},ou=people", "attributes": {"PersonBuid": i}} for i in ids]
    return {"httpStatus": 200, "totalResults": 5, "resources": resources, "cookie": cookie}


async def test_vds_follows_the_cookie_until_it_is_null(scripted: ScriptedServer):
    scripted.reset(
        Step(json=vds_page(["U1", "U2"], "c1")),
        Step(json=vds_page(["U3", "U1"], "c2")),
        Step(
            json={
                "httpStatus": 200,
                "resources": [
                    {"dn": "x", "attributes": {"PersonBuid": ["U4", "U5"]}},
                    {"dn": "y", "attributes": {}},
                ],
                "cookie": None,
            }
        ),
    )
    async with Vds.from_settings(settings(scripted.base_url), retry=FAST_RETRY) as vds:
        assert await vds.person_ids("faculty") == ["U1", "U2", "U3", "U4", "U5"]
    queries = [parse_qs(r.query) for r in scripted.received]
    assert [r.path for r in scripted.received] == ["/vds/adap/ou=people,dc=bu,dc=edu"] * 3
    assert queries[0] == {
        "filter": ["(PersonPrimaryAffiliation=faculty)"],
        "attributes": ["PersonBuid"],
        "scope": ["sub"],
        "sizeLimit": ["25000"],
    }
    assert [q.get("cookie") for q in queries] == [None, ["c1"], ["c2"]]
    assert scripted.received[0].headers["authorization"] == basic("vds-user", "vds-pass")


async def test_vds_stops_when_the_cookie_is_absent_and_uses_the_configured_base_dn(
    scripted: ScriptedServer,
):
    scripted.reset(
        Step(
            json={
                "httpStatus": 200,
                "totalResults": 1,
                "resources": vds_page(["U9"], None)["resources"],
            }
        )
    )
    config = settings(scripted.base_url, VDS_BASE_DN="ou=staff,o=bu")
    async with Vds.from_settings(config, retry=FAST_RETRY) as vds:
        assert await vds.person_ids("staff") == ["U9"]
    assert scripted.received[0].path == "/vds/adap/ou=staff,o=bu"


async def test_vds_refuses_a_cookie_that_would_page_forever(scripted: ScriptedServer):
    scripted.reset(Step(json=vds_page(["U1"], "same")), default=Step(json=vds_page(["U1"], "same")))
    async with Vds.from_settings(settings(scripted.base_url), retry=FAST_RETRY) as vds:
        with pytest.raises(SourceResponseError, match="paging cookie it had already sent"):
            await vds.person_ids("faculty")
    assert len(scripted.received) == 2


async def test_vds_refuses_a_listing_shorter_than_the_total_it_announced(scripted: ScriptedServer):
    # The server counts three staff but stops after one page without a cookie.
    scripted.reset(
        Step(
            json={
                "httpStatus": 200,
                "totalResults": 3,
                "resources": vds_page(["U1"], None)["resources"],
            }
        )
    )
    async with Vds.from_settings(settings(scripted.base_url), retry=FAST_RETRY) as vds:
        with pytest.raises(SourceResponseError, match="listed 1 of the 3 entries"):
            await vds.person_ids("staff")


def test_missing_url_setting_is_a_clear_error():
    with pytest.raises(ValueError, match="SNAPLOGIC_PERSON_URL is not set"):
        SnapLogicPersons.from_settings(Settings(_env_file=None))


def test_url_without_a_scheme_is_refused_before_any_call():
    with pytest.raises(ValueError, match="SAP_URL must start with http:// or https://"):
        Sap.from_settings(Settings(_env_file=None, SAP_URL="sap.example.edu/api"))


async def test_calls_reuse_pooled_connections_and_never_exceed_the_pool(scripted: ScriptedServer):
    scripted.reset(default=Step(json=ps_body([]), delay=0.005))
    config = settings(scripted.base_url)
    async with PeopleSoft.from_settings(config, retry=FAST_RETRY, max_connections=4) as ps:
        for i in range(20):
            await ps.uid_car_term(f"U{i}")
        sequential = {r.client_port for r in scripted.received}
        scripted.received = []
        await asyncio.gather(*(ps.uid_car_term(f"U{i}") for i in range(100)))
        concurrent = {r.client_port for r in scripted.received}
    assert len(sequential) == 1
    assert 1 < len(concurrent) <= 4


async def test_vds_refuses_an_affiliation_that_would_change_the_filter(scripted: ScriptedServer):
    async with Vds.from_settings(settings(scripted.base_url)) as vds:
        with pytest.raises(ValueError, match="not an affiliation"):
            await vds.person_ids("faculty)(PersonBuid=*")
    assert scripted.received == []
