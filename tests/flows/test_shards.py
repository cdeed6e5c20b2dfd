"""Shards on Prefect workers: `run_shards` runs a flow N times on local process workers, as
subflows of its parent, stops the workers after, and fails naming a shard that failed; the
shards share Prefect global concurrency limits across processes."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.context import FlowRunContext
from tests.flows.shard_probe import shard_probe

from dataload.flows.shards import ShardPool, ShardRun, ShardsFailed, run_shards, shard_pool
from dataload.flows.source_slots import ensure_source_limits
from dataload.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def shard_settings(prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings without a work pool, and an environment in which local workers can import the
    probe flow (the repository on PYTHONPATH, as `dataload` is installed in production)."""
    monkeypatch.chdir(tmp_path)  # no developer's .env
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("SHARD_PROBE_MARKER", "inherited")
    monkeypatch.delenv("DATALOAD_WORK_POOL", raising=False)
    return Settings(_env_file=None, DATALOAD_HOME=tmp_path / "home")


@flow(name="shard-parent")
async def _parent(parameters: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """Run the probe's shards on 2 local workers; note what a test checks afterwards."""
    context = FlowRunContext.get()
    assert context is not None and context.flow_run is not None
    seen: dict[str, Any] = {"parent": context.flow_run.id, "called": time.time()}
    async with shard_pool(2, settings=settings) as pool:
        seen["workers"] = [process.pid for process in pool.workers.processes]
        try:
            seen["runs"] = await run_shards(shard_probe, parameters, pool=pool)
        except ShardsFailed as error:
            seen["error"] = error
    return seen


def _notes(record: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def _gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return not Path(f"/proc/{pid}").exists()


@pytest.mark.slow
async def test_two_shards_run_as_subflows_on_two_local_workers_one_slot_at_a_time(
    shard_settings: Settings, tmp_path: Path
) -> None:
    await ensure_source_limits({"probe": 1})
    record = tmp_path / "record.jsonl"
    parameters = [
        {"shard": shard, "record": str(record), "sleep_s": 1.0, "slots": {"probe": 1}}
        for shard in (1, 2)
    ]

    seen = await _parent(parameters, shard_settings)

    runs: list[ShardRun] = seen["runs"]
    assert [run.shard for run in runs] == [1, 2] and all(run.completed for run in runs)
    notes = sorted(_notes(record), key=lambda note: note["from"])
    # Two processes of their own, which inherited the parent's environment...
    assert len({note["pid"] for note in notes} | {os.getpid()}) == 3
    assert {note["marker"] for note in notes} == {"inherited"}
    # ... held the one slot of the global limit one after the other.
    assert notes[0]["to"] <= notes[1]["from"]
    async with get_client() as client:
        for run in runs:
            parent_task = await client.read_task_run(run.flow_run.parent_task_run_id)
            assert parent_task.flow_run_id == seen["parent"]
    # The workers, and the flow run processes they started, are gone.
    assert all(_gone(pid) for pid in seen["workers"] + [note["pid"] for note in notes])
    print(
        f"run_shards called -> first shard holding its slot: {notes[0]['from'] - seen['called']:.1f} s"
    )


@pytest.mark.slow
async def test_a_failing_shard_fails_run_shards_naming_it_and_the_others_are_cancelled(
    shard_settings: Settings, tmp_path: Path
) -> None:
    record = tmp_path / "record.jsonl"
    parameters = [
        {"shard": 1, "record": str(record), "fail": True},
        {"shard": 2, "record": str(record), "sleep_s": 120.0},
    ]

    started = time.monotonic()
    seen = await _parent(parameters, shard_settings)

    error: ShardsFailed = seen["error"]
    assert time.monotonic() - started < 90  # shard 2 did not run its 120 s
    assert "1 of 2 shards did not complete: shard 1 (" in str(error)
    assert "RuntimeError: shard 1 was told to fail" in str(error)
    assert "(so shard 2 cancelled)" in str(error)
    assert [(run.shard, run.state.type.value) for run in error.failed] == [
        (1, "FAILED"),
        (2, "CANCELLED"),
    ]
    assert not record.exists()
    assert all(_gone(pid) for pid in seen["workers"])


async def test_a_configured_work_pool_is_used_as_it_is_and_must_exist(
    shard_settings: Settings,
) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate

    async with get_client() as client:
        await client.create_work_pool(
            WorkPoolCreate(name="elsewhere", type="process"), overwrite=True
        )
    configured = shard_settings.model_copy(update={"work_pool": "elsewhere"})
    async with shard_pool(4, settings=configured) as pool:
        assert pool == ShardPool("elsewhere")  # no local workers, no job variables

    missing = shard_settings.model_copy(update={"work_pool": "nowhere"})
    with pytest.raises(ValueError, match="DATALOAD_WORK_POOL names the work pool 'nowhere'"):
        async with shard_pool(4, settings=missing):
            pass


def _worker_children() -> list[int]:
    """This process's children that are Prefect workers."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != os.getpid():
                continue
            command = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if b"worker" in command and b"start" in command:
            children.append(int(stat.parent.name))
    return children


@pytest.mark.slow
async def test_an_interrupted_caller_cancels_its_shards_and_stops_its_workers(
    shard_settings: Settings, tmp_path: Path
) -> None:
    record = tmp_path / "record.jsonl"
    parameters = [{"shard": shard, "record": str(record), "sleep_s": 120.0} for shard in (1, 2)]
    call = asyncio.create_task(run_shards(shard_probe, parameters, settings=shard_settings))
    async with get_client() as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until both shards run
            running = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    name=FlowRunFilterName(like_="shard-"),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING])),
                )
            )
            if len(running) == 2:
                break
            await asyncio.sleep(0.5)
        assert len(running) == 2 and len(_worker_children()) == 2

        call.cancel()  # as Ctrl-C does to the parent's task
        with pytest.raises(asyncio.CancelledError):
            await call

        ended = [await client.read_flow_run(flow_run.id) for flow_run in running]
    assert {flow_run.state.type for flow_run in ended} == {StateType.CANCELLED}
    assert _worker_children() == [] and not record.exists()
