"""What the flows do when the sources misbehave: ride out transient faults, fail cleanly on
outages and refused credentials, and never let a failed run change what the lake holds."""

from __future__ import annotations

import pytest
from tests.flows.world import World

from dataload.flows import FLOWS
from dataload.sandbox.config import Faults
from dataload.sandbox.truth import person_truth
from dataload.sources import SourceAuthError, SourceServerError

pytestmark = pytest.mark.slow

# Every layer's content, as one value: equal before and after means "the lake is as before".
LAKE_STATE = """
SELECT md5(string_agg(row_text, '' ORDER BY row_text)) FROM (
    SELECT x::text AS row_text FROM person_xform.current_person_data AS x
    UNION ALL SELECT c::text FROM person_curated.person_data_by_service AS c
    UNION ALL SELECT r.bu_uid || r.content_hash::text FROM person_raw.person_data AS r
) AS rows
"""


async def test_flows_ride_out_ten_percent_faults_on_every_endpoint(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = world.sandbox.config
    # Transient faults only: a login page or a 401 means wrong credentials and is not retried.
    config.faults = Faults(http_5xx_rate=0.04, hang_rate=0.03, malformed_json_rate=0.03)
    # A hung call never answers: the client's read timeout ends it (SAP's and VDS's are minutes
    # long, so they get their 10% as errors only).
    config.hang_s = 60
    for system in ("sap", "vds"):
        config.endpoint_faults[system] = Faults(http_5xx_rate=0.05, malformed_json_rate=0.05)
    monkeypatch.setenv("DATALOAD_PEOPLESOFT_TIMEOUT_S", "1")
    monkeypatch.setenv("DATALOAD_SNAPLOGIC_TIMEOUT_S", "3")

    reports = {name: await flow() for name, flow in FLOWS.items()}

    assert {name: report.status for name, report in reports.items()} == dict.fromkeys(
        FLOWS, "complete"
    )
    faults = world.sandbox.stats.snapshot()["faults"]
    assert faults > 20, "the sandbox should have served faults"
    retries = sum(use.retries for report in reports.values() for use in report.sources.values())
    assert retries >= faults
    live = await world.column(
        "SELECT bu_uid FROM person_xform.current_person_data WHERE deleted_at IS NULL"
    )
    assert sorted(live) == sorted(person_truth(config, 1).flow_ids)


async def test_persistent_server_errors_fail_the_flow_and_leave_the_lake_as_it_was(
    world: World,
) -> None:
    await FLOWS["person"]()
    before = await world.conn.fetchval(LAKE_STATE)
    world.sandbox.config.day = 2
    world.sandbox.config.endpoint_faults["snaplogic.person"] = Faults(http_5xx_rate=1.0)

    with pytest.raises(SourceServerError, match="SnapLogic person API"):
        await FLOWS["person"]()

    assert await world.conn.fetchval(LAKE_STATE) == before
    run = await world.last_run("person")
    assert run["status"] == "failed"
    assert "SnapLogic person API" in run["error"] and run["deleted"] == 0


async def test_refused_credentials_fail_at_once_with_a_clear_error(world: World) -> None:
    world.sandbox.config.credentials.peoplesoft_password = "not-the-password"

    with pytest.raises(SourceAuthError) as failure:
        await FLOWS["term"]()

    message = str(failure.value)
    assert "PEOPLE_SOFT_USER" in message and "PEOPLE_SOFT_PASS" in message
    assert "sandbox" not in message.replace("sandbox-", "")  # the password is not in it
    requests = world.sandbox.stats.snapshot()["endpoints"]["peoplesoft.BU_TERM_QRY"]["requests"]
    assert requests == 1
    run = await world.last_run("term")
    assert run["status"] == "failed" and "PEOPLE_SOFT_PASS" in run["error"]


async def test_refused_snaplogic_key_stops_the_person_pipeline_without_a_retry_storm(
    world: World,
) -> None:
    await FLOWS["term"]()
    world.sandbox.config.credentials.snaplogic_person_key = "another-key"

    with pytest.raises(SourceAuthError, match="SNAPLOGIC_PERSON_KEY"):
        await FLOWS["person"]()

    person_calls = world.sandbox.stats.snapshot()["endpoints"]["snaplogic.person"]["requests"]
    assert person_calls <= world.settings.snaplogic_concurrency
    assert await world.count("SELECT count(*) FROM person_xform.current_person_data") == 0
    assert (await world.last_run("person"))["status"] == "failed"
