"""A sandbox day whose person documents drifted: the run's summary, ledger and alert name the
changes and the services they break; a frozen contract rejects the changed records."""

from __future__ import annotations

import pytest
from tests.flows.webhook import webhook_receiver
from tests.flows.world import World

from dataload.flows import FLOWS
from dataload.sandbox.drift import DEMO_DRIFTS

pytestmark = pytest.mark.slow

GPA = "/studentInfo/studentSemester[]/studentSemesterInfo/currentGpa"


async def test_a_drifted_day_is_reported_with_the_services_it_breaks_and_alerted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.sandbox.config.drifts = list(DEMO_DRIFTS)  # from day 2
    with webhook_receiver() as hook:
        monkeypatch.setenv("DATALOAD_ALERTS", hook.url)
        first = await FLOWS["person"]()
        world.sandbox.config.day = 2
        drifted = await FLOWS["person"]()

    assert first.schema_changes == [] and first.status == "complete"
    assert drifted.status == "complete"
    changes = drifted.schema_changes
    assert any(c.startswith("/personBasic/birthDate vanished in ") for c in changes), changes
    assert any(c.startswith(f"{GPA} changed type: string in ") for c in changes), changes
    assert any(
        c.startswith("service bioDemo affected: /personBasic/birthDate vanished") for c in changes
    )
    assert any(c.startswith("service studentGPA affected: ") and "currentGpa" in c for c in changes)
    ledger = await world.column(
        "SELECT unnest(schema_changes) FROM lake.run_details WHERE run_id = $1", drifted.run_id
    )
    assert ledger == changes
    assert [post["json"]["title"] for post in hook.posts] == [
        "dataload person run complete: schema drift"
    ]
    message = hook.posts[0]["json"]["message"]
    assert hook.posts[0]["json"]["type"] == "warning"
    assert "birthDate vanished" in message and "currentGpa changed type" in message
    assert "service bioDemo affected" in message and "service studentGPA affected" in message
    assert "service bioDemo affected" in drifted.headline()  # the run's summary line


async def test_with_a_frozen_contract_the_drifted_records_are_rejected(world: World) -> None:
    world.sandbox.config.drifts = list(DEMO_DRIFTS)
    await FLOWS["person"]()
    await world.conn.execute(
        "SELECT lake.set_contract('person', 'bioDemo', '', 'required', 'discard_row')"
    )
    await world.conn.execute(
        "SELECT lake.set_contract('person', 'studentGPA', '', 'frozen', 'discard_row')"
    )
    world.sandbox.config.day = 2
    # A rejected record keeps its key offered: its person keeps the version before, and is
    # neither missing nor deleted.
    report = await FLOWS["person"]()

    run = await world.last_run("person")
    reasons = await world.column(
        "SELECT DISTINCT reason FROM lake.rejected WHERE run_id = $1", run["run_id"]
    )
    assert report.status == "complete" and report.counts["rejected"] == run["rejected"] > 0
    assert any(
        "contract of bioDemo: /personBasic/birthDate is required and absent" in r for r in reasons
    )
    assert any(
        f"contract of studentGPA: {GPA} is frozen as number, got string" in r for r in reasons
    )
    kept = await world.count(
        "SELECT count(*) FROM person_xform.current_person_data"
        " WHERE person_data #> '{personBasic}' ? 'dateOfBirth'"
    )
    assert kept == 0  # no drifted record was stored
