"""Which failures are retried, how long the client waits, and what the error says.

Exact answer sequences come from the scripted server over a real socket.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from tests.sources.scripted_http import FAST_RETRY, ScriptedServer, Step

from dataload.sources import (
    PeopleSoft,
    RetryPolicy,
    Sap,
    SnapLogicPersons,
    SourceAuthError,
    SourceMalformedResponse,
    SourceRateLimited,
    SourceRefused,
    SourceResponseError,
    SourceServerError,
    SourceTransportError,
    SourceUnresolvable,
    Vds,
    timeouts,
)

SECRET = "s3cr3t-Do-Not-Leak"
OK_PS = {"status": "success", "data": {"query": {"numrows": 0, "queryname": "Q", "rows": []}}}


def peoplesoft(base_url: str, **kw) -> PeopleSoft:
    options = {
        "base_url": f"{base_url}/ps",
        "user": "ps-user",
        "password": SECRET,
        "retry": FAST_RETRY,
    }
    return PeopleSoft(**(options | kw))


def persons(base_url: str, **kw) -> SnapLogicPersons:
    options = {
        "url": f"{base_url}/snaplogic/person",
        "key": SECRET,
        "cs_env": "qas",
        "retry": FAST_RETRY,
    }
    return SnapLogicPersons(**(options | kw))


async def test_429_with_retry_after_seconds_waits_then_succeeds(scripted: ScriptedServer):
    scripted.reset(Step(429, json={"error": "busy"}, headers={"Retry-After": "1"}), Step(json=[]))
    async with persons(scripted.base_url) as api:
        batch = await api.persons([{"CAMPUS_ID": "U1"}])
        stats = api.stats.as_dict()
    assert batch.records == []
    first, second = scripted.received
    assert second.at - first.at >= 1.0
    assert stats == {
        "requests": 2,
        "retries": 1,
        "transport_errors": 0,
        "by_status": {"200": 1, "429": 1},
    }


async def test_retry_after_as_an_http_date_is_honoured(scripted: ScriptedServer):
    # HTTP dates have whole seconds: the next whole second plus one is 1 to 2 s away.
    now = datetime.now(UTC)
    when = now.replace(microsecond=0) + timedelta(seconds=2)
    scripted.reset(
        Step(503, body="down", headers={"Retry-After": format_datetime(when, usegmt=True)}),
        Step(json=OK_PS),
    )
    async with peoplesoft(scripted.base_url) as ps:
        assert await ps.terms() == []
    first, second = scripted.received
    # Well above the 0.01-0.05 s backoff a missed date would give, with room for a busy machine.
    assert second.at - first.at >= 0.5


async def test_retry_after_beyond_the_cap_is_capped(scripted: ScriptedServer):
    scripted.reset(Step(429, headers={"Retry-After": "3600"}), Step(json=OK_PS))
    policy = RetryPolicy(base_delay=0.01, max_retry_after=0.2)
    async with peoplesoft(scripted.base_url, retry=policy) as ps:
        assert await ps.terms() == []
    first, second = scripted.received
    assert 0.2 <= second.at - first.at < 1.0


async def test_rate_limited_until_attempts_run_out_says_to_lower_concurrency(
    scripted: ScriptedServer,
):
    scripted.reset(default=Step(429, headers={"Retry-After": "0"}))
    async with persons(scripted.base_url) as api:
        with pytest.raises(SourceRateLimited) as raised:
            await api.persons([{"CAMPUS_ID": "U1"}])
    assert len(scripted.received) == FAST_RETRY.max_attempts
    assert "lower DATALOAD_SNAPLOGIC_CONCURRENCY" in str(raised.value)


async def test_wrong_credentials_fail_once_with_the_variables_to_check(
    scripted: ScriptedServer, caplog
):
    scripted.reset(default=Step(401, json={"error": "Unauthorized"}))
    caplog.set_level(logging.DEBUG, logger="dataload.sources")
    async with persons(scripted.base_url) as api:
        with pytest.raises(SourceAuthError) as raised:
            await api.persons([{"CAMPUS_ID": "U1"}])
        # Later calls of the same client fail at once: no storm of doomed requests.
        for _ in range(20):
            with pytest.raises(SourceAuthError):
                await api.persons([{"CAMPUS_ID": "U2"}])
    assert len(scripted.received) == 1
    assert str(raised.value) == (
        f"SnapLogic person API at {scripted.base_url}/snaplogic/person answered 401 Unauthorized: "
        "check SNAPLOGIC_PERSON_KEY"
    )
    assert SECRET not in str(raised.value) + caplog.text


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, SourceAuthError),
        (403, SourceAuthError),
        (404, SourceResponseError),
        (400, SourceResponseError),
    ],
)
async def test_client_errors_are_never_retried(scripted: ScriptedServer, status, kind):
    scripted.reset(default=Step(status, json={}))
    async with peoplesoft(scripted.base_url) as ps:
        with pytest.raises(kind) as raised:
            await ps.uid_car_term("U1")
    assert type(raised.value) is kind
    assert len(scripted.received) == 1
    if status == 404:
        assert "check PEOPLE_SOFT_URL" in str(raised.value)
    if status in (401, 403):
        assert "check PEOPLE_SOFT_USER/PEOPLE_SOFT_PASS" in str(raised.value)


@pytest.mark.parametrize(
    "step",
    [
        Step(
            200,
            body="<html><body>Sign in to PeopleSoft</body></html>",
            headers={"content-type": "text/html"},
        ),
        Step(
            200,
            body="  <!DOCTYPE html><form action=login>",
            headers={"content-type": "application/json"},
        ),
    ],
)
async def test_html_login_page_on_200_is_an_auth_error_not_retried(scripted: ScriptedServer, step):
    scripted.reset(default=step)
    async with peoplesoft(scripted.base_url) as ps:
        with pytest.raises(
            SourceAuthError, match=r"HTML page .* check PEOPLE_SOFT_USER/PEOPLE_SOFT_PASS"
        ):
            await ps.terms()
    assert len(scripted.received) == 1


async def test_persistent_500_fails_after_bounded_retries_with_a_clear_error(
    scripted: ScriptedServer, caplog
):
    scripted.reset(default=Step(500, body="Internal Server Error"))
    caplog.set_level(logging.WARNING, logger="dataload.sources")
    async with peoplesoft(scripted.base_url) as ps:
        with pytest.raises(SourceServerError) as raised:
            await ps.uid_car_term("U12345678")
        stats = ps.stats
    assert len(scripted.received) == FAST_RETRY.max_attempts
    message = str(raised.value)
    assert message.startswith(
        f"PeopleSoft query BU_TERM_STD_FULL_TERM at {scripted.base_url}/ps/PSIGW/"
    )
    assert "answered 500 Internal Server Error (gave up after 4 attempts)" in message
    assert "U12345678" not in message  # prompt values (personal data) stay out of messages
    assert (stats.requests, stats.retries, stats.by_status[500]) == (4, 3, 4)
    assert caplog.text.count("retrying in") == 3
    assert "gave up" not in caplog.text  # only the final error says so
    assert SECRET not in caplog.text


async def test_malformed_json_is_retried_as_transient(scripted: ScriptedServer):
    scripted.reset(Step(200, body='{"status": "success", "data": {"qu'), Step(json=OK_PS))
    async with peoplesoft(scripted.base_url) as ps:
        assert await ps.terms() == []
    assert len(scripted.received) == 2


async def test_large_answers_decoded_off_the_loop_keep_the_same_failures(scripted: ScriptedServer):
    # Person answers are decoded in a worker thread: a cut body is still retried, and a login
    # page is still an authentication failure that stops the client's further calls.
    scripted.reset(
        Step(200, body='[{"personid": "U1", "ss'),
        Step(json=[{"personid": "U1", "ssn": "1"}]),
        Step(200, body="<html>sign in</html>", headers={"content-type": "text/html"}),
    )
    async with persons(scripted.base_url) as api:
        batch = await api.persons([{"CAMPUS_ID": "U1"}])
        assert batch.records == [{"personid": "U1"}]
        with pytest.raises(SourceAuthError, match="HTML page"):
            await api.persons([{"CAMPUS_ID": "U1"}])
        with pytest.raises(SourceAuthError):
            await api.persons([{"CAMPUS_ID": "U1"}])
    assert len(scripted.received) == 3


async def test_persistently_malformed_json_fails_after_bounded_retries(scripted: ScriptedServer):
    scripted.reset(default=Step(200, body="[{"))
    async with Sap(url=f"{scripted.base_url}/sap", key=SECRET, retry=FAST_RETRY) as sap:
        with pytest.raises(
            SourceMalformedResponse, match=r"not valid JSON .*gave up after 4 attempts"
        ):
            await sap.active_employee_ids()
    assert len(scripted.received) == 4


async def test_a_hung_request_times_out_and_is_retried(scripted: ScriptedServer):
    scripted.reset(
        Step(json={"ET_EMP_LIST": []}, delay=1.0),
        Step(json={"ET_EMP_LIST": [{"BUID": "U1", "EMP_STATUS": "3 - Active"}]}),
    )
    sap = Sap(
        url=f"{scripted.base_url}/sap", key=SECRET, retry=FAST_RETRY, timeout=timeouts(read=0.2)
    )
    async with sap:
        assert await sap.active_employee_ids() == ["U1"]
        assert sap.stats.transport_errors == 1


async def test_unreachable_service_names_the_url_variable(caplog):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    caplog.set_level(logging.DEBUG, logger="dataload.sources")
    vds = Vds(url=f"http://127.0.0.1:{port}/vds", username="u", password=SECRET, retry=FAST_RETRY)
    async with vds:
        with pytest.raises(SourceTransportError) as raised:
            await vds.person_ids("faculty")
    message = str(raised.value)
    # A refused connection is tried 3 times, not the policy's 4 (a 503's), and says so.
    assert message.startswith(
        f"VDS directory (faculty) at http://127.0.0.1:{port}/vds/adap/ou=people,dc=bu,dc=edu "
        f"could not be reached: nothing listens on 127.0.0.1:{port} (connection refused)"
    )
    assert "VDS_URL" in message and "gave up after 3 attempts" in message
    assert "(attempt 2 of 3)" in caplog.text
    assert SECRET not in message + caplog.text


async def test_secrets_in_the_url_never_reach_messages(scripted: ScriptedServer):
    scripted.reset(default=Step(500))
    url = httpx.URL(scripted.base_url).copy_with(username="svc", password=SECRET, path="/sap")
    async with Sap(url=str(url), key=SECRET, retry=RetryPolicy(max_attempts=1)) as sap:
        with pytest.raises(SourceServerError) as raised:
            await sap.active_employee_ids()
    assert SECRET not in str(raised.value)
    assert "svc" not in str(raised.value)


async def test_an_outage_under_many_calls_costs_about_one_request_per_call(
    scripted: ScriptedServer,
):
    scripted.reset(default=Step(500))
    policy = RetryPolicy(max_attempts=5, base_delay=0.001, budget_reserve=5, budget_ratio=0.1)
    async with peoplesoft(scripted.base_url, retry=policy) as ps:
        outcomes = await asyncio.gather(
            *(ps.uid_car_term(f"U{i}") for i in range(40)), return_exceptions=True
        )
    assert all(isinstance(outcome, SourceServerError) for outcome in outcomes)
    # Without the budget: 40 calls x 5 attempts = 200 requests.
    assert len(scripted.received) <= 40 + 5 + 4 + 1


async def test_a_refused_request_quotes_the_servers_reason_without_secrets(
    scripted: ScriptedServer,
):
    body = {"response_map": {"error_list": [{"message": f"csEnv must be 'test'; key {SECRET} ok"}]}}
    scripted.reset(default=Step(400, json=body))
    async with persons(scripted.base_url) as api:
        with pytest.raises(SourceResponseError) as raised:
            await api.persons([{"CAMPUS_ID": "U1"}])
    message = str(raised.value)
    assert "answered 400 Bad Request (csEnv must be 'test'; key REDACTED ok)" in message
    assert SECRET not in message
    assert len(scripted.received) == 1


async def test_a_host_name_that_does_not_resolve_is_not_retried():
    async with peoplesoft("http://no-such-host.invalid") as ps:
        with pytest.raises(SourceUnresolvable) as raised:
            await ps.terms()
        stats = ps.stats
    assert (stats.requests, stats.retries) == (1, 0)
    assert "host name does not resolve: check PEOPLE_SOFT_URL" in str(raised.value)


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_a_refused_connection_says_nothing_listens_there_within_5_s():
    port = closed_port()
    # The clients' own retry policy, as a run has it (six attempts for a 503).
    async with Sap(url=f"http://127.0.0.1:{port}/sap", key=SECRET, retry=RetryPolicy()) as sap:
        started = asyncio.get_running_loop().time()
        with pytest.raises(SourceRefused) as raised:
            await sap.active_employee_ids()
        took = asyncio.get_running_loop().time() - started
        stats = sap.stats

    # Before: six attempts over up to ~15 s, then "could not be reached (ConnectError: ...)".
    assert took < 5, took
    assert stats.requests == 3  # fewer than a 503's six
    message = str(raised.value)
    assert f"nothing listens on 127.0.0.1:{port} (connection refused)" in message
    assert "the sandbox is not running there" in message and "`dataload sandbox`" in message
    assert "SAP_URL" in message and SECRET not in message


async def test_a_refused_connection_elsewhere_names_the_variable_not_the_sandbox():
    port = closed_port()
    async with peoplesoft(f"http://localhost:{port}/gateway") as ps:
        with pytest.raises(SourceRefused) as raised:
            await ps.terms()
    message = str(raised.value)
    assert f"nothing listens on localhost:{port}" in message and "sandbox" not in message
    assert "check the host and port in PEOPLE_SOFT_URL" in message


async def test_a_503_is_retried_more_patiently_than_a_refused_connection(
    scripted: ScriptedServer,
):
    scripted.reset(default=Step(503, json={"error": "down"}))
    async with peoplesoft(scripted.base_url, retry=RetryPolicy(base_delay=0.01)) as ps:
        with pytest.raises(SourceServerError):
            await ps.terms()
        stats = ps.stats
    assert stats.requests == 6
