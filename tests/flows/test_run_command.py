"""`dataload run <flow>` runs a flow now, prints its summary, and says by its exit code how it
went."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tests.flows.world import World

pytestmark = pytest.mark.slow


def dataload(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataload.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_run_term_loads_the_terms_and_prints_a_summary(world: World) -> None:
    result = dataload("run", "term")

    assert result.returncode == 0, result.stderr
    assert "term-raw-flow: complete" in result.stdout
    assert "curated services: " in result.stdout and "active_terms" in result.stdout
    assert (await world.last_run("term"))["status"] == "complete"


async def test_run_exits_non_zero_with_the_reason_when_the_flow_fails(world: World) -> None:
    world.sandbox.config.credentials.peoplesoft_password = "changed"

    result = dataload("run", "term")

    assert result.returncode == 1
    assert "error: the term flow failed: PeopleSoft" in result.stderr
    assert "PEOPLE_SOFT_PASS" in result.stderr


async def test_an_alert_destination_that_does_not_answer_is_said_on_the_terminal(
    world: World,
) -> None:
    from dataload.prefect_server import free_port

    world.sandbox.config.credentials.peoplesoft_password = "changed"
    nobody = f"http://127.0.0.1:{free_port()}/hooks/dataload"

    result = dataload("run", "term", DATALOAD_ALERTS=f"{nobody}?token=s3cret")

    # Before: nothing on the terminal; only dataload.log said "alert not sent".
    assert result.returncode == 1
    port = nobody.split(":")[2].split("/")[0]
    assert f"warning: alerts will not reach {nobody}: nothing listens on 127.0.0.1:{port}" in (
        result.stderr
    )
    assert f"warning: alert not sent to {nobody}: could not connect" in result.stderr
    assert "s3cret" not in result.stderr


async def test_a_run_waiting_for_anothers_writer_lock_says_so_every_few_seconds(
    world: World,
) -> None:
    import asyncio

    from dataload.lake import Lake, init_lake
    from dataload.lake.db import create_pool

    await init_lake(world.conn, [])
    pool = await create_pool(world.settings)
    try:
        holder = await Lake(pool).start_run("term", flow_run_id="the-other-run")
        try:
            # Piped, not a terminal: before, nothing was printed until the run was refused.
            result = await asyncio.to_thread(dataload, "run", "term", DATALOAD_WRITER_WAIT_S="12")
        finally:
            await holder.finish(complete=False)
    finally:
        await pool.close()

    assert result.returncode == 1
    waiting = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("term: waiting for the writer lock ")
    ]
    assert waiting, result.stderr
    assert f"term run {holder.run_id} is loading" in waiting[0] and "the-other-run" in waiting[0]
    assert "DATALOAD_WRITER_WAIT_S" in waiting[0]
    assert "refused after waiting 12 s" in result.stderr


async def test_run_prints_the_summary_of_a_partial_run_and_exits_1(world: World) -> None:
    world.sandbox.config.left_out_rate = 0.5  # SnapLogic leaves people out: some never come

    result = dataload("run", "person")

    assert result.returncode == 1, result.stderr
    summary = " ".join(result.stdout.split())  # wrapped to 80 columns
    assert "person-raw-flow: partial" in summary and "deleted nobody" in summary
    assert "run: http" in summary and "/runs/flow-run/" in summary
    assert "error" not in result.stderr
    assert (await world.last_run("person"))["status"] == "partial"
