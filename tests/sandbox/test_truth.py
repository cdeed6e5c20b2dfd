"""The introspection endpoints: truth agreeing with what the systems serve; stats; knobs."""

from __future__ import annotations

from datetime import date

import pytest
from tests.sandbox.wire import ps_query, ps_rows, sap_employees, vds_all

from dataload.sandbox.app import SandboxConfig
from dataload.sandbox.calendar import active_ugrd_terms
from dataload.sandbox.truth import person_truth, term_truth


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        # Spring current, Fall before it: add the term after the next one.
        (date(2026, 5, 1), ["2258", "2262", "2265", "2266"]),
        # Summer current: just the term before, the current and the one after.
        (date(2026, 6, 15), ["2262", "2265", "2266"]),
        (date(2026, 7, 20), ["2265", "2266", "2268"]),
        # Fall current, Summer 2 before it: add the term before the previous one.
        (date(2026, 10, 1), ["2265", "2266", "2268", "2272"]),
        # Between Fall's end and Spring's start, Spring is current.
        (date(2027, 1, 5), ["2268", "2272", "2275", "2276"]),
    ],
)
def test_active_ugrd_terms_follow_the_design_rule(on, expected):
    assert term_truth(SandboxConfig(start_date=on))["active_ugrd_terms"] == expected


async def test_active_terms_derive_from_the_rows_the_term_query_serves(client, config):
    rows = ps_rows(await ps_query(client, "BU_TERM_QRY"))
    assert active_ugrd_terms(rows) == term_truth(config)["active_ugrd_terms"]


async def test_flow_ids_are_the_union_of_what_the_four_lists_serve(client, config):
    students = [r["CAMPUS_ID"] for r in ps_rows(await ps_query(client, "BU_PARM_0216_QRY"))]
    employees = (await sap_employees(client)).json()["ET_EMP_LIST"]
    active = [e["BUID"] for e in employees if e["EMP_STATUS"] == "3 - Active"]
    faculty, _ = await vds_all(client, "faculty")
    staff, _ = await vds_all(client, "staff")
    union = set(students) | set(active) | set(faculty) | set(staff)
    truth = person_truth(config)
    assert set(truth.flow_ids) == union
    assert len(truth.flow_ids) == len(union) < len(students) + len(active) + len(faculty)
    assert set(truth.flow_ids) <= set(truth.persons)


async def test_summary_endpoint_states_counts_and_active_terms(client, config):
    body = (await client.get("/_sandbox/truth")).json()
    truth = person_truth(config)
    assert body["counts"]["students"] == len(truth.students)
    assert body["counts"]["flow_ids"] == len(truth.flow_ids)
    assert body["active_ugrd_terms"] == term_truth(config)["active_ugrd_terms"]
    assert body["current_terms"] == {"GRAD": "2262", "LAW": "2262", "UGRD": "2262"}


async def test_truth_endpoints_answer_for_any_day(client, config):
    persons = (await client.get("/_sandbox/truth/persons", params={"day": 4})).json()
    assert persons == person_truth(config, 4).to_dict()
    terms = (await client.get("/_sandbox/truth/terms", params={"day": 13})).json()
    assert terms["active_ugrd_terms"] == ["2262", "2265", "2266"]
    courses = await client.get("/_sandbox/truth/courses", params={"term": ["2262", "2258"]})
    body = courses.json()
    assert body["terms"] == ["2262", "2258"]
    assert {key[1] for key in body["courses"]} == {"2262", "2258"}
    default = (await client.get("/_sandbox/truth/courses")).json()
    assert default["terms"] == term_truth(config)["active_ugrd_terms"]


async def test_stats_count_requests_statuses_and_reset(client):
    await ps_query(client, "BU_TERM_QRY")
    await ps_query(client, "BU_TERM_QRY", auth=("x", "y"))
    stats = (await client.get("/_sandbox/stats")).json()
    endpoint = stats["endpoints"]["peoplesoft.BU_TERM_QRY"]
    assert endpoint["requests"] == 2
    assert endpoint["statuses"] == {"200": 1, "401": 1}
    assert stats["max_in_flight"] >= 1
    reset = (await client.post("/_sandbox/stats/reset")).json()
    assert reset["requests"] == 0


async def test_config_can_be_read_without_secrets_and_patched_at_run_time(client, config):
    shown = (await client.get("/_sandbox/config")).json()
    assert "credentials" not in shown and "sandbox-sap-key" not in str(shown)
    patch = {"day": 3, "endpoint_faults": {"sap.employees": {"http_5xx_rate": 1.0}}}
    assert (await client.patch("/_sandbox/config", json=patch)).status_code == 200
    assert config.day == 3
    assert (await sap_employees(client)).status_code >= 500
    refused = await client.patch("/_sandbox/config", json={"seed": 1})
    assert refused.status_code == 400
    assert "seed" in refused.json()["error"]
    assert (await client.patch("/_sandbox/config", json={"faults": {"x": 1}})).status_code == 400
    assert config.seed == 42
