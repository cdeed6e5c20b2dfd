"""Resuming: a person run killed or failed half way is resumed, by `dataload run person --resume`
or by Prefect retrying the flow run; the source systems are asked about each person about once
in all, and the lake ends as after one uninterrupted run."""

from __future__ import annotations

import asyncio
import signal

import asyncpg
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
#: Small batches and little concurrency: a run commits in steps of 20 people, and few are in
#: flight (queried, not yet committed) when it is killed.
SMALL_STEPS = {
    "DATALOAD_PERSON_BATCH_SIZE": "20",
    "DATALOAD_LAKE_BATCH_SIZE": "20",
    "DATALOAD_PSQUERY_CONCURRENCY": "4",
    "DATALOAD_SNAPLOGIC_CONCURRENCY": "1",
}
#: People one such run can have asked for and not committed: the queries running, and a batch
#: being filled, queued for SnapLogic, at SnapLogic, queued for the lake (2) and being written.
IN_FLIGHT = 4 + 20 * 6


def asks(world: World) -> dict[str, int]:
    """People asked about so far: PeopleSoft calls, people in SnapLogic calls."""
    endpoints = world.sandbox.stats.snapshot()["endpoints"]
    return {
        PEOPLESOFT: endpoints[PEOPLESOFT]["requests"],
        SNAPLOGIC: endpoints[SNAPLOGIC]["records_asked"],
    }


async def assert_loaded_once(world: World, truth: set[str]) -> None:
    live = await world.column(
        "SELECT bu_uid FROM person_xform.current_person_data WHERE deleted_at IS NULL"
    )
    assert set(live) == truth
    # One version per person, as one uninterrupted run leaves.
    assert await world.count("SELECT count(*) FROM person_raw.person_data") == len(truth)


async def test_a_run_killed_half_way_resumes_asking_each_person_about_once(world: World) -> None:
    config = world.sandbox.config
    config.endpoint_latency[PEOPLESOFT] = Latency(ms=40)
    truth = set(person_truth(config, 1).flow_ids)
    people = len(truth)

    async def conn_of() -> asyncpg.Connection:
        return await db.connect(world.settings)

    loader = start_loader(*SMALL_STEPS.items())
    try:
        await wait_for("half the people loaded", loaded_at_least(conn_of, people // 2))
    finally:
        loader.send_signal(signal.SIGKILL)
        loader.wait()
    killed = await world.last_run("person")

    async def killed_calls_ended() -> bool:  # the sandbox still answers the dead loader's calls
        return world.sandbox.stats.snapshot()["in_flight"] == 0

    await wait_for("the killed loader's calls to end", killed_calls_ended)
    before = asks(world)
    world.sandbox.stats.reset()

    resumed = start_loader(*SMALL_STEPS.items(), args=("--resume",))
    out, err = await asyncio.to_thread(resumed.communicate, timeout=180)

    assert resumed.returncode == 0, (out, err)
    run = await world.last_run("person")
    assert (run["status"], run["resumed_from"]) == ("complete", killed["run_id"])
    assert f"resuming run {killed['run_id']} ({run['carried']} loaded by it)" in out
    committed = run["carried"]
    assert people // 2 <= committed < people
    after = asks(world)
    # The resumed run asked exactly for the people the killed one had not committed ...
    assert after == {PEOPLESOFT: people - committed, SNAPLOGIC: people - committed}
    # ... and the killed one only for those it committed and those it had in flight.
    for system in (PEOPLESOFT, SNAPLOGIC):
        assert committed <= before[system] <= committed + IN_FLIGHT, (system, before, committed)
        assert before[system] + after[system] <= people + IN_FLIGHT
    await assert_loaded_once(world, truth)
    statuses = await world.column(
        "SELECT status FROM lake.runs WHERE domain = 'person' ORDER BY run_id"
    )
    assert statuses == ["abandoned", "complete"]


async def test_a_prefect_retry_resumes_the_run_its_first_attempt_failed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SnapLogic key is rotated half way (every call is refused: the flow run fails), then
    put back before Prefect retries the flow run, which resumes by itself."""
    for name, value in SMALL_STEPS.items():
        monkeypatch.setenv(name, value)
    config = world.sandbox.config
    config.endpoint_latency[PEOPLESOFT] = Latency(ms=20)
    truth = set(person_truth(config, 1).flow_ids)
    key = config.credentials.snaplogic_person_key
    retrying = person_raw_flow.with_options(retries=1, retry_delay_seconds=3)

    async def conn_of() -> asyncpg.Connection:
        return await db.connect(world.settings)

    async def first_attempt_failed() -> bool:
        return await world.count("SELECT count(*) FROM lake.runs WHERE status = 'failed'") == 1

    flow_run = asyncio.ensure_future(retrying())
    try:
        await wait_for("half the people loaded", loaded_at_least(conn_of, len(truth) // 2))
        config.credentials.snaplogic_person_key = "rotated"
        await wait_for("the first attempt failed", first_attempt_failed)
        config.credentials.snaplogic_person_key = key
        report = await flow_run
    finally:
        flow_run.cancel()

    failed = await world.column("SELECT run_id FROM lake.runs WHERE status = 'failed'")
    assert (report.status, report.resumed_from) == ("complete", failed[0])
    assert len(truth) // 2 <= report.carried < len(truth)
    assert report.counts["new"] == len(truth) - report.carried
    await assert_loaded_once(world, truth)


async def test_resume_without_an_interrupted_run_is_a_full_run(world: World) -> None:
    assert (await person_raw_flow()).status == "complete"

    report = await person_raw_flow(resume=True)

    assert (report.status, report.resumed_from) == ("complete", None)
    assert report.counts["unchanged"] == len(person_truth(world.sandbox.config, 1).flow_ids)
