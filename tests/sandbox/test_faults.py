"""What production does to a client: each fault knob, per endpoint and globally; latency; 429."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from tests.sandbox.wire import (
    PERSON_KEY,
    courses,
    persons,
    ps_query,
    ps_rows,
    sap_employees,
    vds_search,
)

from dataload.sandbox.config import Faults, Latency
from dataload.sandbox.truth import person_truth, term_truth


async def call_every_endpoint(client: httpx.AsyncClient) -> dict[str, httpx.Response]:
    term = "2262"
    return {
        "peoplesoft.BU_TERM_QRY": await ps_query(client, "BU_TERM_QRY"),
        "peoplesoft.BU_PARM_0216_QRY": await ps_query(client, "BU_PARM_0216_QRY"),
        "peoplesoft.BU_TERM_STD_FULL_TERM": await ps_query(
            client, "BU_TERM_STD_FULL_TERM", {"BUID": "U00000000"}
        ),
        "snaplogic.course": await courses(client, term),
        "snaplogic.person": await persons(client, ["U00000000"]),
        "sap.employees": await sap_employees(client),
        "vds.search": await vds_search(client, "staff"),
    }


async def test_persistent_5xx_on_one_endpoint_leaves_the_others_healthy(client, config):
    config.endpoint_faults["snaplogic.person"] = Faults(http_5xx_rate=1.0)
    answers = await call_every_endpoint(client)
    assert answers.pop("snaplogic.person").status_code in (500, 502, 503)
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 200)


async def test_a_system_wide_override_breaks_every_query_of_that_system(client, config):
    config.set_endpoint_fault("peoplesoft:http_5xx=1")
    answers = await call_every_endpoint(client)
    assert all(answers[name].status_code >= 500 for name in answers if name.startswith("peo"))
    assert all(answers[n].status_code == 200 for n in answers if not n.startswith("peo"))


async def test_global_fault_rate_hits_about_that_share_of_requests(client, config):
    config.faults.http_5xx_rate = 0.1
    statuses = [(await ps_query(client, "BU_TERM_QRY")).status_code for _ in range(300)]
    failed = sum(1 for s in statuses if s >= 500)
    assert 12 <= failed <= 55
    stats = client._transport.app.state.gate.stats.snapshot()  # type: ignore[attr-defined]
    assert stats["faults"] == failed
    assert stats["endpoints"]["peoplesoft.BU_TERM_QRY"]["faults"] == {"http_5xx": failed}


async def test_server_errors_have_each_systems_error_body(client, config):
    config.faults.http_5xx_rate = 1.0
    answers = await call_every_endpoint(client)
    assert answers["peoplesoft.BU_TERM_QRY"].json()["status"] == "fail"
    assert answers["snaplogic.course"].json()["http_status_code"] >= 500
    assert answers["sap.employees"].json()["error"]["message"]
    assert answers["vds.search"].json()["httpStatus"] >= 500


async def test_malformed_json_is_a_200_whose_body_does_not_parse(client, config):
    config.faults.malformed_json_rate = 1.0
    for name, response in (await call_every_endpoint(client)).items():
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith("application/json")
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.text)


async def test_html_login_page_comes_back_as_a_200_instead_of_json(client, config):
    config.faults.html_login_rate = 1.0
    for response in (await call_every_endpoint(client)).values():
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "<form" in response.text


async def test_unauthorized_fault_answers_401_despite_right_credentials(client, config):
    config.faults.unauthorized_rate = 1.0
    answers = await call_every_endpoint(client)
    assert {r.status_code for r in answers.values()} == {401}
    config.faults.unauthorized_rate = 0.0
    assert ps_rows(await ps_query(client, "BU_TERM_QRY"))


async def test_error_body_fault_is_a_200_carrying_the_systems_error(client, config):
    config.faults.error_body_rate = 1.0
    answers = await call_every_endpoint(client)
    assert {r.status_code for r in answers.values()} == {200}
    assert answers["peoplesoft.BU_TERM_QRY"].json()["status"] == "fail"
    assert isinstance(answers["snaplogic.person"].json(), dict)
    assert "ET_EMP_LIST" not in answers["sap.employees"].json()
    assert answers["vds.search"].json()["httpStatus"] == 500


async def test_empty_fault_is_a_well_formed_answer_that_lists_nothing(client, config):
    config.faults.empty_rate = 1.0
    answers = await call_every_endpoint(client)
    assert {r.status_code for r in answers.values()} == {200}
    query = answers["peoplesoft.BU_TERM_QRY"].json()
    assert query["status"] == "success" and query["data"]["query"]["rows"] == []
    assert query["data"]["query"]["queryname"] == "BU_TERM_QRY"
    assert answers["snaplogic.course"].json() == answers["snaplogic.person"].json() == []
    assert answers["sap.employees"].json() == {"ET_EMP_LIST": []}
    assert answers["vds.search"].json()["resources"] == []


async def test_left_out_people_are_missing_from_some_answers_and_back_in_others(client, config):
    config.empty_object_rate = 0.0
    config.left_out_rate = 0.5
    ids = person_truth(config, 1).persons[:40]

    answers = [{doc["personid"] for doc in (await persons(client, ids)).json()} for _ in range(3)]

    everyone = set().union(*answers)
    assert all(0 < len(answer) < len(everyone) for answer in answers)
    assert len(everyone) > max(len(answer) for answer in answers)  # a retry brings some back


async def test_wrong_credentials_everywhere_are_refused(client, config):
    config.credentials.peoplesoft_password = "rotated"
    config.credentials.snaplogic_course_key = "rotated"
    config.credentials.snaplogic_person_key = "rotated"
    config.credentials.sap_key = "rotated"
    config.credentials.vds_password = "rotated"
    answers = await call_every_endpoint(client)
    assert {r.status_code for r in answers.values()} == {401}


async def test_fixed_latency_delays_only_the_endpoint_it_is_set_on(client, config):
    config.endpoint_latency["sap.employees"] = Latency(ms=150)
    started = time.perf_counter()
    await sap_employees(client)
    slow = time.perf_counter() - started
    started = time.perf_counter()
    await ps_query(client, "BU_TERM_QRY")
    fast = time.perf_counter() - started
    assert slow >= 0.15 > fast


async def test_the_latency_is_the_time_to_the_answer_its_preparation_included():
    from starlette.responses import Response

    from dataload.sandbox.config import SandboxConfig
    from dataload.sandbox.gate import Gate
    from dataload.sandbox.systems import SAP

    gate = Gate(SandboxConfig(latency=Latency(ms=400)))

    async def slow_answer() -> Response:  # a large answer the sandbox takes 0.3 s to build
        await asyncio.sleep(0.3)
        return Response("{}")

    started = time.perf_counter()
    await gate("sap.employees", SAP, authorized=True, answer=slow_answer)
    # 0.4 s as configured, not 0.4 s of waiting and then 0.3 s of building.
    assert 0.4 <= time.perf_counter() - started < 0.6


def test_latency_parses_fixed_uniform_and_exponential_and_refuses_nonsense():
    import random

    rng = random.Random(1)
    assert Latency.parse("50").sample_s(rng) == 0.05
    uniform = [Latency.parse("10-20").sample_s(rng) for _ in range(100)]
    assert all(0.01 <= s <= 0.02 for s in uniform)
    exponential = [Latency.parse("~30").sample_s(rng) for _ in range(2000)]
    assert 0.02 < sum(exponential) / len(exponential) < 0.04
    with pytest.raises(ValueError, match="latency"):
        Latency.parse("fast")


async def test_a_hung_request_times_the_client_out_over_a_real_socket(live):
    live.config.hang_s = 30
    live.config.endpoint_faults["vds.search"] = Faults(hang_rate=1.0)
    async with httpx.AsyncClient(base_url=live.base_url, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await vds_search(client, "staff")
        assert (await sap_employees(client)).status_code == 200
    assert live.stats.snapshot()["endpoints"]["vds.search"]["faults"] == {"hang": 1}


async def test_a_hang_shorter_than_the_client_timeout_ends_in_504(client, config):
    config.hang_s = 0.05
    config.faults.hang_rate = 1.0
    assert (await sap_employees(client)).status_code == 504


async def test_snaplogic_answers_429_with_retry_after_beyond_the_concurrency_limit(live):
    live.config.latency = Latency(ms=400)
    live.config.retry_after_s = 3
    term = term_truth(live.config)["active_ugrd_terms"][0]
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10, limits=limits) as client:
        answers = await asyncio.gather(*(courses(client, term) for _ in range(14)))
        people = await asyncio.gather(*(persons(client, ["U00000000"]) for _ in range(10)))
    refused = [r for r in answers if r.status_code == 429]
    assert len(refused) == 4
    assert sum(1 for r in answers if r.status_code == 200) == 10
    assert all(r.headers["retry-after"] == "3" for r in refused)
    assert refused[0].json()["http_status_code"] == 429
    assert {r.status_code for r in people} == {200}, "each task has its own limit"
    stats = live.stats.snapshot()["endpoints"]["snaplogic.course"]
    assert live.config.snaplogic_concurrency_limit < stats["max_in_flight"] <= 14
    assert stats["faults"] == {"rate_limited": 4}


async def test_person_calls_within_the_limit_all_succeed(client, config):
    config.latency = Latency(ms=100)
    body = {"uidCarTerm": json.dumps([{"CAMPUS_ID": "U00000000"}])}
    calls = [
        client.post("/snaplogic/person", params={"csEnv": "test"}, json=body, headers=PERSON_KEY)
        for _ in range(config.snaplogic_concurrency_limit)
    ]
    assert {r.status_code for r in await asyncio.gather(*calls)} == {200}
