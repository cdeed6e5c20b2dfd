"""SAP employee list: shape, statuses, auth, function name."""

from __future__ import annotations

from tests.sandbox.wire import sap_employees

from dataload.sandbox.truth import person_truth


async def test_employee_list_carries_active_and_inactive_employees_as_the_truth_says(
    client, config
):
    response = await sap_employees(client)
    assert response.status_code == 200
    employees = response.json()["ET_EMP_LIST"]
    truth = person_truth(config)
    active = [e["BUID"] for e in employees if e["EMP_STATUS"] == "3 - Active"]
    inactive = [e["BUID"] for e in employees if e["EMP_STATUS"] != "3 - Active"]
    assert active == truth.employees_active
    assert inactive == truth.employees_inactive
    assert inactive, "some employees must not be active"
    assert all(e["EMP_STATUS"][0].isdigit() and " - " in e["EMP_STATUS"] for e in employees)


async def test_employee_list_refuses_a_wrong_key(client):
    response = await sap_employees(client, headers={"x-api-key": "nope"})
    assert response.status_code == 401
    assert response.json()["error"]["message"]


async def test_unknown_function_or_non_object_body_is_a_bad_request(client):
    headers = {"x-api-key": "sandbox-sap-key"}
    wrong = await client.post(
        "/sap", params={"BAPIName": "Z_OTHER", "account": "HR"}, json={}, headers=headers
    )
    assert wrong.status_code == 400
    params = {"BAPIName": "Z_HR_EMPLOYEE_OBJ_LIST", "account": "HR"}
    not_object = await client.post("/sap", params=params, content=b"[]", headers=headers)
    assert not_object.status_code == 400
