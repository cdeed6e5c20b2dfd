"""The chaos suite: what production does to a run, and what the lake must do about it.

Every test runs the real person flow against the sandbox over HTTP and a real PostgreSQL, and
checks the one thing that matters most: nobody who still exists is ever marked deleted, and the
next clean run converges to the lake an uninterrupted run would have built.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import asyncpg
import psutil
import pytest
from tests.flows.conftest import settings_environment
from tests.flows.loaders import loaded_at_least, start_loader, wait_for
from tests.flows.world import World

from dataload.flows import person_raw_flow
from dataload.flows.states import IncompleteRun
from dataload.lake import db
from dataload.lake.server import EmbeddedPostgres
from dataload.sandbox.config import Faults, Latency
from dataload.sandbox.server import running_sandbox
from dataload.sandbox.truth import person_truth
from dataload.settings import Settings

pytestmark = pytest.mark.slow


async def live_people(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "SELECT bu_uid FROM person_xform.current_person_data WHERE deleted_at IS NULL"
    )
    return {r[0] for r in rows}


async def deleted_people(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "SELECT bu_uid FROM person_xform.current_person_data WHERE deleted_at IS NOT NULL"
    )
    return {r[0] for r in rows}


async def repeated_versions(conn: asyncpg.Connection) -> int:
    """Raw rows identical to the version before them: what two writers or a replayed batch
    would leave."""
    return await conn.fetchval(
        "SELECT count(*) FROM (SELECT deleted, content_hash, lag(content_hash) OVER w AS before,"
        "  lag(deleted) OVER w AS was_deleted"
        "  FROM person_raw.person_data WINDOW w AS (PARTITION BY bu_uid ORDER BY raw_id)) AS v"
        " WHERE was_deleted IS NOT NULL AND deleted = was_deleted"
        "   AND content_hash IS NOT DISTINCT FROM before"
    )


async def test_empty_answers_and_people_left_out_delete_nobody(world: World) -> None:
    """SnapLogic answers `[]` and leaves people out; before the fix a day-2 run under these
    faults marked living people deleted and reported complete."""
    config = world.sandbox.config
    assert (await person_raw_flow()).status == "complete"
    config.day = 2
    truth = person_truth(config, 2)
    gone = set(person_truth(config, 1).flow_ids) - set(truth.flow_ids)
    config.endpoint_faults["snaplogic.person"] = Faults(empty_rate=0.3)
    config.left_out_rate = 0.3

    with pytest.raises(IncompleteRun) as partial:  # its Prefect state is Failed, "Partial"
        await person_raw_flow()

    faulty = partial.value.report
    assert faulty.status == "partial"
    assert faulty.counts["deleted"] == 0
    assert await deleted_people(world.conn) == set()
    assert faulty.missing and set(faulty.missing) <= set(truth.flow_ids)
    assert "deleted nobody" in faulty.outcome and "listed keys were not loaded" in faulty.outcome
    assert faulty.fetched["people SnapLogic never answered"] >= len(faulty.missing)

    config.endpoint_faults.clear()
    config.left_out_rate = 0.0
    clean = await person_raw_flow()

    assert clean.status == "complete"
    assert await deleted_people(world.conn) == gone
    assert await live_people(world.conn) == set(truth.flow_ids)
    assert await repeated_versions(world.conn) == 0


async def test_a_loader_killed_at_any_point_converges_and_is_marked_abandoned(
    world: World,
) -> None:
    """kill -9 of `dataload run person` before its first batch, early and late in the load."""
    config = world.sandbox.config
    config.endpoint_latency["peoplesoft.BU_TERM_STD_FULL_TERM"] = Latency(ms=40)

    async def conn_of() -> asyncpg.Connection:
        return await db.connect(world.settings)

    killed = []
    for records in (0, 120, 300):
        loader = start_loader()
        try:
            await wait_for(f"{records} records loaded", loaded_at_least(conn_of, records))
        finally:
            loader.send_signal(signal.SIGKILL)
            loader.wait()
        killed.append(await world.conn.fetchval("SELECT max(run_id) FROM lake.runs"))

    config.endpoint_latency.clear()
    report = await person_raw_flow()

    assert report.status == "complete"
    statuses = await world.column(
        "SELECT status FROM lake.runs WHERE run_id = ANY($1) ORDER BY run_id", killed
    )
    assert statuses == ["abandoned"] * 3
    assert await world.count("SELECT count(*) FROM lake.runs WHERE status = 'running'") == 0
    truth = set(person_truth(config, 1).flow_ids)
    assert await live_people(world.conn) == truth
    assert await deleted_people(world.conn) == set()
    # Converged: exactly one version per person, as one uninterrupted run leaves.
    assert await world.count("SELECT count(*) FROM person_raw.person_data") == len(truth)
    assert await world.count("SELECT count(*) FROM lake.person_seen") == 0


async def test_two_concurrent_runs_have_one_writer(world: World) -> None:
    """Two `dataload run person` started together on a fresh lake. Before the fix both loaded,
    interleaved, and both inserted the people neither had committed yet."""
    config = world.sandbox.config
    # A run of about 16 s: the two still overlap when one process starts seconds after the
    # other on a loaded machine.
    config.endpoint_latency["peoplesoft.BU_TERM_STD_FULL_TERM"] = Latency(ms=400)

    loaders = [start_loader(("DATALOAD_WRITER_WAIT_S", "0")) for _ in range(2)]
    outcomes = [await asyncio.to_thread(p.communicate, timeout=180) for p in loaders]

    codes = [p.returncode for p in loaders]
    assert sorted(codes) == [0, 1], outcomes
    refusal = outcomes[codes.index(1)][1].strip().splitlines()
    assert len(refusal) == 1 and "one writer per domain" in refusal[0], refusal
    truth = set(person_truth(config, 1).flow_ids)
    assert await live_people(world.conn) == truth
    assert await world.count("SELECT count(*) FROM person_raw.person_data") == len(truth)
    assert await repeated_versions(world.conn) == 0


# --- a database crash ------------------------------------------------------------------------


def crash(server: EmbeddedPostgres) -> None:
    """kill -9 of the postmaster and every backend: a crash, or a failover of a real server."""
    pid = server.status().pid
    assert pid is not None
    postmaster = psutil.Process(pid)
    for process in [*postmaster.children(recursive=True), postmaster]:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs([postmaster], timeout=10)


def restart(server: EmbeddedPostgres) -> None:
    """Start the server again at once (a backend can take a moment to let go of memory)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            server.start()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def test_a_database_crash_during_a_run_deletes_nobody_and_the_next_run_converges(
    prefect_api: str,
    sandbox_config,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """kill -9 and restart of the database while a day-2 person run loads. Before the fix the
    run carried on (its pool reconnected), crash recovery had emptied the unlogged table of the
    keys it had seen, and its finish deleted everyone it had loaded before the crash."""
    server = EmbeddedPostgres(isolated_home)
    server.start()
    try:
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("POSTGRES_HOST", raising=False)
        settings = Settings(_env_file=None, DATALOAD_HOME=isolated_home, POSTGRES_DB="chaos")
        for name, value in settings_environment(settings).items():
            monkeypatch.setenv(name, value)
        with running_sandbox(sandbox_config) as sandbox:
            for name, value in sandbox.env().items():
                monkeypatch.setenv(name, value)
            assert (await person_raw_flow()).status == "complete"
            sandbox_config.day = 2
            truth = person_truth(sandbox_config, 2)
            gone = set(person_truth(sandbox_config, 1).flow_ids) - set(truth.flow_ids)
            # Slow enough that the next batch comes after the server is back: a run that
            # carried on used to delete everyone it loaded before the crash.
            sandbox_config.endpoint_latency["peoplesoft.BU_TERM_STD_FULL_TERM"] = Latency(ms=300)

            async def conn_of() -> asyncpg.Connection:
                return await db.connect(settings)

            run = asyncio.ensure_future(person_raw_flow(return_state=True))
            await wait_for("a day-2 run half way", loaded_at_least(conn_of, 200))
            await asyncio.to_thread(crash, server)
            await asyncio.to_thread(restart, server)
            state = await run
            sandbox_config.endpoint_latency.clear()

            conn = await db.connect(settings)
            try:
                assert state.is_failed()
                assert await deleted_people(conn) == set()
                status = await conn.fetchval(
                    "SELECT status FROM lake.runs ORDER BY run_id DESC LIMIT 1"
                )
                assert status in ("failed", "running")  # running if the crash hid its end

                report = await person_raw_flow()

                assert report.status == "complete"
                assert (
                    await conn.fetchval("SELECT count(*) FROM lake.runs WHERE status = 'running'")
                    == 0
                )
                assert await deleted_people(conn) == gone
                assert await live_people(conn) == set(truth.flow_ids)
                assert await repeated_versions(conn) == 0
            finally:
                await conn.close()
    finally:
        server.stop()
