"""SnapLogic course and person tasks: shapes, keys, auth, parameters, empty objects."""

from __future__ import annotations

import json

import orjson
from tests.sandbox.wire import COURSE_KEY, PERSON_KEY, courses, persons

from dataload.sandbox.truth import course_truth, person_truth, term_truth


def find_keys(value: object, predicate) -> list[str]:
    """Every key anywhere in `value` that satisfies `predicate`."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if predicate(key):
                found.append(key)
            found.extend(find_keys(item, predicate))
    elif isinstance(value, list):
        for item in value:
            found.extend(find_keys(item, predicate))
    return found


async def test_course_task_answers_one_document_per_career_with_unique_course_keys(client, config):
    active = term_truth(config)["active_ugrd_terms"]
    response = await courses(client, active[1])
    assert response.status_code == 200
    documents = response.json()
    assert {d["termDetails"]["academicCareer"] for d in documents} == {"UGRD", "GRAD", "LAW"}
    keys = [
        (d["termDetails"]["academicCareer"], d["termDetails"]["term"]["code"],
         c["v2"]["courseId"], c["v2"]["sessionCode"])
        for d in documents
        for c in d["courses"]
    ]  # fmt: skip
    assert len(keys) == len(set(keys))
    assert all(key[1] == active[1] for key in keys)
    assert sorted(map(list, keys)) == sorted(course_truth(config, terms=[active[1]])["courses"])
    assert any(c["v2"]["sessionCode"] != "1" for d in documents for c in d["courses"])


async def test_course_task_answers_an_empty_list_for_a_term_nobody_offers(client):
    response = await courses(client, "2995")
    assert response.status_code == 200
    assert response.json() == []


async def test_course_task_accepts_a_bearer_key_and_refuses_a_wrong_one(client, config):
    term = term_truth(config)["active_ugrd_terms"][0]
    bearer = {"Authorization": f"Bearer {COURSE_KEY['x-api-key']}"}
    assert (await courses(client, term, headers=bearer)).status_code == 200
    refused = await courses(client, term, headers={"x-api-key": "sandbox-person-key"})
    assert refused.status_code == 401
    assert refused.json()["response_map"]["error_list"][0]["message"]
    assert (await courses(client, term, headers={})).status_code == 401


async def test_course_task_rejects_a_bad_term_or_environment(client):
    assert (await courses(client, "fall")).status_code == 400
    wrong_env = await courses(client, "2262", csEnv="prod")
    assert wrong_env.status_code == 400
    assert "csEnv" in wrong_env.json()["response_map"]["error_list"][0]["message"]


async def test_person_task_answers_one_document_per_present_person_in_request_order(client, config):
    config.empty_object_rate = 0.0
    truth = person_truth(config)
    wanted = truth.students[:5] + truth.faculty[:3] + ["U00000000"] + truth.staff[:2]
    response = await persons(client, wanted)
    assert response.status_code == 200
    documents = response.json()
    assert [d["personid"] for d in documents] == [b for b in wanted if b != "U00000000"]


async def test_person_documents_are_nested_and_carry_the_sensitive_fields(client, config):
    config.empty_object_rate = 0.0
    truth = person_truth(config)
    documents = (await persons(client, truth.persons[:60])).json()
    for document in documents:
        assert {"personid", "personBasic", "personDetails", "email", "phone"} <= set(document)
        assert document["personBasic"]["ssn"]
        assert "sexualOrientation" in document["personBasic"]
    students = [d for d in documents if "studentInfo" in d]
    assert students and all(d["personid"] in truth.students for d in students)
    semester = students[0]["studentInfo"]["studentSemester"][0]
    assert "currentGpa" in semester["studentSemesterInfo"]
    deep = {key for d in documents for key in find_keys(d, lambda k: k.startswith("finAid"))}
    assert {"finAidAwards", "finAidStatus"} <= deep
    sizes = sorted(len(orjson.dumps(d)) for d in documents)
    assert 3000 <= sizes[len(sizes) // 2] <= 8000


async def test_objects_parameter_limits_the_role_sections(client, config):
    config.empty_object_rate = 0.0
    truth = person_truth(config)
    both = next(b for b in truth.students if b in truth.employees_active)
    full = (await persons(client, [both])).json()[0]
    assert {"studentInfo", "employeeInfo"} <= set(full)
    only_student = (await persons(client, [both], objects="['student']")).json()[0]
    assert "studentInfo" in only_student and "employeeInfo" not in only_student
    bad = await persons(client, [both], objects="['alien']")
    assert bad.status_code == 400


async def test_person_task_inserts_empty_objects_at_the_configured_rate(client, config):
    truth = person_truth(config)
    config.empty_object_rate = 1.0
    documents = (await persons(client, truth.persons[:10])).json()
    assert documents[1::2] == [{}] * 10
    config.empty_object_rate = 0.2
    documents = (await persons(client, truth.persons)).json()
    empty = sum(1 for d in documents if d == {})
    assert 0.1 * len(truth.persons) < empty < 0.3 * len(truth.persons)


async def test_person_task_accepts_full_uid_car_term_rows(client, config):
    truth = person_truth(config)
    rows = [
        {"CAMPUS_ID": truth.students[0], "ACAD_CAREER": "UGRD", "STRM": "2262"},
        {"CAMPUS_ID": truth.students[0], "ACAD_CAREER": "UGRD", "STRM": "2258"},
        {"CAMPUS_ID": truth.employees_active[0]},
    ]
    config.empty_object_rate = 0.0
    response = await client.post(
        "/snaplogic/person",
        params={"objects": "['student','employee']", "csEnv": "test"},
        json={"uidCarTerm": json.dumps(rows)},
        headers=PERSON_KEY,
    )
    assert [d["personid"] for d in response.json()] == [
        truth.students[0],
        truth.employees_active[0],
    ]


async def test_person_task_rejects_a_body_without_uid_car_term_text(client):
    for body in ({"uidCarTerm": [{"CAMPUS_ID": "U1"}]}, {"ids": "[]"}, {"uidCarTerm": "[{"}):
        response = await client.post(
            "/snaplogic/person", params={"csEnv": "test"}, json=body, headers=PERSON_KEY
        )
        assert response.status_code == 400
        assert "uidCarTerm" in response.json()["response_map"]["error_list"][0]["message"]


async def test_person_task_refuses_the_course_key(client, config):
    response = await persons(client, ["U00000000"], headers={"x-api-key": "sandbox-course-key"})
    assert response.status_code == 401
