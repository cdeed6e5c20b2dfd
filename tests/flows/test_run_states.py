"""What Prefect shows of a run: only a run that did all it should is Completed. A partial or
guarded run ends in a FAILED state named Partial or Guarded, its message the ledger's outcome,
as the Prefect server reports it; it is not retried, and its report is still reachable."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.states import State
from tests.flows.world import World

from dataload.flows import person_raw_flow
from dataload.flows.states import IncompleteRun, run_report

pytestmark = pytest.mark.slow


async def server_flow_run(state: State[Any]) -> FlowRun:
    """The flow run as the Prefect server has it (what the UI and automations see)."""
    flow_run_id = state.state_details.flow_run_id
    assert isinstance(flow_run_id, UUID)
    async with get_client() as client:
        return await client.read_flow_run(flow_run_id)


def snaplogic_leaves_people_out(world: World) -> None:
    """Half the people left out of every answer: some are still missing after the asks again."""
    world.sandbox.config.left_out_rate = 0.5


async def test_a_partial_run_ends_failed_named_partial_with_its_outcome(world: World) -> None:
    complete = await person_raw_flow(return_state=True)
    flow_run = await server_flow_run(complete)
    assert (flow_run.state_type, flow_run.state_name) == (StateType.COMPLETED, "Completed")
    assert (await run_report(complete)).status == "complete"

    snaplogic_leaves_people_out(world)
    state = await person_raw_flow(return_state=True)

    report = await run_report(state)
    assert report.status == "partial" and report.missing
    assert "deleted nobody" in report.outcome
    flow_run = await server_flow_run(state)
    assert flow_run.state_type == StateType.FAILED
    assert flow_run.state_name == "Partial"
    assert flow_run.state.message == report.outcome == (await world.last_run("person"))["outcome"]


async def test_a_guarded_run_ends_failed_named_guarded_with_its_outcome(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await person_raw_flow()
    world.sandbox.config.day = 2  # some people leave
    monkeypatch.setenv("DATALOAD_MAX_DELETE_SHARE", "0")

    state = await person_raw_flow(return_state=True)

    report = await run_report(state)
    assert report.status == "guarded" and report.counts["deleted"] == 0
    flow_run = await server_flow_run(state)
    assert (flow_run.state_type, flow_run.state_name) == (StateType.FAILED, "Guarded")
    assert flow_run.state.message == report.outcome == (await world.last_run("person"))["outcome"]


async def test_calling_the_flow_of_a_partial_run_raises_with_its_report(world: World) -> None:
    snaplogic_leaves_people_out(world)

    with pytest.raises(IncompleteRun, match="person-raw-flow: partial") as raised:
        await person_raw_flow()

    assert raised.value.report.status == "partial"
    assert raised.value.report.outcome in str(raised.value)


async def test_a_partial_run_is_not_retried_a_failed_one_keeps_its_retries(
    world: World,
) -> None:
    retrying = person_raw_flow.with_options(retries=2, retry_delay_seconds=0)
    snaplogic_leaves_people_out(world)

    state = await retrying(return_state=True)

    flow_run = await server_flow_run(state)
    assert (flow_run.state_type, flow_run.state_name) == (StateType.FAILED, "Partial")
    assert flow_run.run_count == 1
    assert await world.column("SELECT status FROM lake.runs") == ["partial"]

    # A run that raises is still retried (and would resume): twice, then it stays Failed.
    world.sandbox.config.left_out_rate = 0.0
    world.sandbox.config.credentials.snaplogic_person_key = "rotated"
    state = await retrying(return_state=True)

    flow_run = await server_flow_run(state)
    assert (flow_run.state_type, flow_run.state_name) == (StateType.FAILED, "Failed")
    assert flow_run.run_count == 3
    statuses = await world.column("SELECT status FROM lake.runs ORDER BY run_id")
    assert statuses == ["partial", "failed", "failed", "failed"]
