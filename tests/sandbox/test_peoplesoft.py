"""PeopleSoft Query Access Service contract: shapes, prompts, aliases, auth, errors."""

from __future__ import annotations

from tests.sandbox.wire import ps_path, ps_query, ps_rows

from dataload.sandbox.truth import person_truth, term_truth

TERM_FIELDS = {
    "INSTITUTION",
    "ACAD_CAREER",
    "STRM",
    "DESCR",
    "TERM_BEGIN_DT",
    "TERM_END_DT",
    "CURRENT_IND",
    "BU_CUR_FUTURE_TERM",
    "BU_FUTURE_TERM_1",
    "BU_PAST_TERM_1",
    "OLD_TERM",
    "ACAD_YEAR",
    "attr:rownumber",
}


async def test_term_query_lists_every_career_with_numbered_rows_and_one_current_term(client):
    rows = ps_rows(await ps_query(client, "BU_TERM_QRY"))
    assert [row["attr:rownumber"] for row in rows] == list(range(1, len(rows) + 1))
    assert all(set(row) == TERM_FIELDS for row in rows)
    assert {row["ACAD_CAREER"] for row in rows} >= {"UGRD", "GRAD", "LAW"}
    for career in ("UGRD", "GRAD", "LAW"):
        current = [r for r in rows if r["ACAD_CAREER"] == career and r["CURRENT_IND"] == "Y"]
        assert len(current) == 1
    ugrd = [row for row in rows if row["ACAD_CAREER"] == "UGRD"]
    assert [row["STRM"] for row in ugrd] == sorted(row["STRM"] for row in ugrd)
    assert {row["DESCR"].rsplit(" ", 1)[0] for row in ugrd} == {
        "Spring",
        "Summer 1",
        "Summer 2",
        "Fall",
    }
    assert all(row["TERM_BEGIN_DT"] < row["TERM_END_DT"] for row in rows)


async def test_term_query_answers_the_truth_rows_with_some_aliased_fields(client, config):
    response = await ps_query(client, "BU_TERM_QRY")
    raw_rows = response.json()["data"]["query"]["rows"]
    aliased = [row for row in raw_rows if "A.STRM" in row]
    assert 0 < len(aliased) < len(raw_rows)
    assert all("attr:rownumber" in row for row in aliased)
    assert ps_rows(response) == term_truth(config)["rows"]


async def test_student_query_lists_the_days_students(client, config):
    rows = ps_rows(await ps_query(client, "BU_PARM_0216_QRY"))
    assert [row["CAMPUS_ID"] for row in rows] == person_truth(config).students
    assert [row["attr:rownumber"] for row in rows] == list(range(1, len(rows) + 1))


async def test_student_query_honours_maxrows(client):
    params = {"isconnectedquery": "N", "maxrows": "5", "json_resp": "true"}
    response = await client.get(ps_path("BU_PARM_0216_QRY"), params=params, auth=("sandbox",) * 2)
    assert len(ps_rows(response)) == 5


async def test_career_term_rows_of_a_student_name_that_student(client, config):
    student = person_truth(config).students[0]
    rows = ps_rows(await ps_query(client, "BU_TERM_STD_FULL_TERM", {"BUID": student}))
    assert rows
    assert {row["CAMPUS_ID"] for row in rows} == {student}
    assert all(row["ACAD_CAREER"] in ("UGRD", "GRAD", "LAW") for row in rows)
    strms = [row["STRM"] for row in rows if row["ACAD_CAREER"] == rows[0]["ACAD_CAREER"]]
    assert strms == sorted(strms)


async def test_career_term_rows_are_empty_for_a_non_student_or_unknown_id(client, config):
    truth = person_truth(config)
    employee = next(buid for buid in truth.employees_active if buid not in truth.students)
    for buid in (employee, "U00000000", "not-an-id"):
        rows = ps_rows(await ps_query(client, "BU_TERM_STD_FULL_TERM", {"BUID": buid}))
        assert rows == []


async def test_wrong_password_is_refused_with_401_and_a_basic_challenge(client):
    response = await ps_query(client, "BU_TERM_QRY", auth=("sandbox", "wrong"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json()["status"] == "fail"
    no_auth = await client.get(ps_path("BU_TERM_QRY"), params={"json_resp": "true"})
    assert no_auth.status_code == 401


async def test_unknown_query_missing_prompt_and_non_json_request_fail_with_a_status(client):
    unknown = await ps_query(client, "BU_NO_SUCH_QRY")
    assert unknown.status_code == 404
    assert unknown.json()["status"] == "fail"
    missing = await ps_query(client, "BU_TERM_STD_FULL_TERM")
    assert missing.status_code == 400
    assert "BUID" in missing.json()["data"]["error"]["message"]
    xml = await client.get(ps_path("BU_TERM_QRY"), auth=("sandbox", "sandbox"))
    assert xml.status_code == 400
    uneven = await client.get(
        ps_path("BU_TERM_STD_FULL_TERM"),
        params={
            "json_resp": "true",
            "prompt_uniquepromptname": "BUID,TERM",
            "prompt_fieldvalue": "U1",
        },
        auth=("sandbox", "sandbox"),
    )
    assert uneven.status_code == 400
