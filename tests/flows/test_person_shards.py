"""A person run split into shards, each a flow run on a local process worker: everyone loaded
once, within the global concurrency limits; a failed shard fails the run, which resumes."""

from __future__ import annotations

import asyncio
import signal

import asyncpg
import psutil
import pytest
from tests.flows.loaders import loaded_at_least, start_loader, wait_for
from tests.flows.world import World

from dataload.flows import person_raw_flow
from dataload.lake import db
from dataload.sandbox.config import Latency
from dataload.sandbox.truth import person_truth

pytestmark = pytest.mark.slow

PEOPLESOFT = "peoplesoft.BU_TERM_STD_FULL_TERM"  # one call per person
SNAPLOGIC = "snaplogic.person"


@pytest.fixture
def sharding(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """Local workers (no work pool), 4 PeopleSoft and 2 SnapLogic calls at once in all."""
    monkeypatch.delenv("DATALOAD_WORK_POOL", raising=False)
    monkeypatch.setenv("DATALOAD_PSQUERY_CONCURRENCY", "4")
    monkeypatch.setenv("DATALOAD_SNAPLOGIC_CONCURRENCY", "2")
    monkeypatch.setenv("DATALOAD_PERSON_BATCH_SIZE", "20")
    monkeypatch.setenv("DATALOAD_LAKE_BATCH_SIZE", "20")
    return world


async def loaded_once(world: World, truth: set[str]) -> bool:
    live = await world.column(
        "SELECT bu_uid FROM person_xform.current_person_data WHERE deleted_at IS NULL"
    )
    raw = await world.count("SELECT count(*) FROM person_raw.person_data")
    return set(live) == truth and raw == len(truth)


async def test_two_shards_on_local_workers_load_everyone_once_within_the_limits(
    sharding: World,
) -> None:
    world = sharding
    world.sandbox.config.endpoint_latency[PEOPLESOFT] = Latency(ms=20)
    truth = set(person_truth(world.sandbox.config, 1).flow_ids)

    report = await person_raw_flow(shards=2)

    assert report.status == "complete", report.headline()
    assert await loaded_once(world, truth)
    endpoints = world.sandbox.stats.snapshot()["endpoints"]
    assert endpoints[PEOPLESOFT]["requests"] == len(truth)
    assert endpoints[SNAPLOGIC]["records_asked"] == len(truth)
    # Two processes, two connection pools, and still never more calls at once than configured.
    assert endpoints[PEOPLESOFT]["max_in_flight"] <= 4
    assert endpoints[SNAPLOGIC]["max_in_flight"] <= 2
    # The shards' own counts reached the parent's report.
    assert report.fetched["people without student rows"] > 0


async def test_a_failed_shard_fails_the_run_deleting_nobody_and_the_run_resumes(
    sharding: World,
) -> None:
    """The SnapLogic key is rotated once half the people are loaded: the shards fail, so does
    the run; a resumed sharded run loads only the rest."""
    world = sharding
    config = world.sandbox.config
    config.endpoint_latency[PEOPLESOFT] = Latency(ms=20)
    truth = set(person_truth(config, 1).flow_ids)
    key = config.credentials.snaplogic_person_key

    async def conn_of() -> asyncpg.Connection:
        return await db.connect(world.settings)

    first = asyncio.ensure_future(person_raw_flow(shards=2, return_state=True))
    try:
        await wait_for("half the people loaded", loaded_at_least(conn_of, len(truth) // 2), 180)
        config.credentials.snaplogic_person_key = "rotated"
        state = await first
    finally:
        first.cancel()
        config.credentials.snaplogic_person_key = key

    assert state.is_failed()
    failed = await world.last_run("person")
    assert failed["status"] == "failed" and "shards did not complete" in failed["error"]
    assert failed["deleted"] == 0

    report = await person_raw_flow(shards=2, resume=True)

    assert (report.status, report.resumed_from) == ("complete", failed["run_id"])
    assert report.carried >= len(truth) // 2
    assert report.counts["new"] == len(truth) - report.carried
    assert await loaded_once(world, truth)


async def test_a_killed_sharded_run_leaves_no_worker_behind_and_resumes(sharding: World) -> None:
    """kill -9 of `dataload run person --shards 2` while its shards load: its local workers and
    their shards end too (before the fix the workers polled for work forever); the run resumes."""
    world = sharding
    config = world.sandbox.config
    config.endpoint_latency[PEOPLESOFT] = Latency(ms=40)
    truth = set(person_truth(config, 1).flow_ids)

    async def conn_of() -> asyncpg.Connection:
        return await db.connect(world.settings)

    loader = start_loader(args=("--shards", "2"))
    try:
        await wait_for("the shards loading", loaded_at_least(conn_of, len(truth) // 4), 180)
        started = psutil.Process(loader.pid).children(recursive=True)
        commands = [" ".join(process.cmdline()) for process in started]
    finally:
        loader.send_signal(signal.SIGKILL)
        loader.wait()
    assert sum("prefect.engine" in command for command in commands) == 2, commands
    assert sum("prefect worker start" in command for command in commands) == 2, commands

    _, alive = await asyncio.to_thread(psutil.wait_procs, started, timeout=30)
    assert alive == [], [" ".join(p.cmdline()) for p in alive]

    report = await person_raw_flow(shards=2, resume=True)

    assert report.status == "complete" and report.resumed_from is not None
    assert await loaded_once(world, truth)


async def test_a_sharded_run_with_people_missing_ends_partial_its_shards_completed(
    sharding: World,
) -> None:
    """SnapLogic leaves people out: each shard completes (it loaded its share as it could), and
    the parent, which finishes the run, ends in Prefect's FAILED state named Partial."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.client.schemas.objects import StateType

    from dataload.flows.states import run_report

    world = sharding
    world.sandbox.config.left_out_rate = 0.5

    state = await person_raw_flow(shards=2, return_state=True)

    report = await run_report(state)
    assert report.status == "partial" and report.missing, report.headline()
    assert report.fetched["people SnapLogic never answered"] >= len(report.missing)
    async with get_client() as client:
        parent = await client.read_flow_run(state.state_details.flow_run_id)
        shards = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])
            )
        )
    assert (parent.state_type, parent.state_name) == (StateType.FAILED, "Partial")
    assert parent.state.message == report.outcome
    assert sorted(shard.state_name for shard in shards) == ["Completed", "Completed"]
