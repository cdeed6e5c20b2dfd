"""Resumable and shared runs: a run resumes the failed or abandoned one before it (its listing
and what it loaded), within a freshness window; several processes load one run by shards."""

from __future__ import annotations

import asyncpg
import pytest

from dataload.lake import Lake, LakeError

from .people import person


def uid(n: int) -> str:
    return f"U{n:08d}"


async def live(conn) -> set[str]:
    rows = await conn.fetch(
        "SELECT bu_uid FROM person_xform.current_person_data WHERE deleted_at IS NULL"
    )
    return {r[0] for r in rows}


async def interrupted_run(lake: Lake, listed, loaded, *, how: str = "failed") -> int:
    """A run that listed `listed`, committed `loaded`, then failed (or whose process died)."""
    run = await lake.start_run("person")
    await run.list_keys([uid(n) for n in listed])
    await run.load([person(n) for n in loaded])
    if how == "failed":
        await run.fail("the source went away")
    else:  # the process died: its writer session ends without a word
        run._writer.terminate()
    return run.run_id


async def test_a_resumed_run_loads_only_what_the_failed_run_did_not(lake: Lake, conn):
    failed = await interrupted_run(lake, range(1, 101), range(1, 61))

    run = await lake.start_run("person", resume=True)

    assert (run.resumed_from, run.carried) == (failed, 60)
    await run.list_keys([uid(n) for n in range(1, 101)])
    assert await run.pending_keys() == [uid(n) for n in range(61, 101)]
    await run.load([person(n) for n in range(61, 101)])
    summary = await run.finish(complete=True)
    assert (summary.status, summary.listed, summary.missing) == ("complete", 100, 0)
    assert (summary.resumed_from, summary.carried, summary.inserted) == (failed, 60, 40)
    assert await conn.fetchval("SELECT count(*) FROM person_raw.person_data") == 100


async def test_an_abandoned_run_is_resumed_too(lake: Lake, conn):
    abandoned = await interrupted_run(lake, range(1, 21), range(1, 11), how="killed")

    run = await lake.start_run("person", resume=True)

    assert (run.resumed_from, run.carried) == (abandoned, 10)
    status = await conn.fetchval("SELECT status FROM lake.runs WHERE run_id = $1", abandoned)
    assert status == "abandoned"
    await run.fail("done with it")


async def test_the_listing_of_a_resumed_run_is_the_union_of_both(lake: Lake, conn):
    """Deletions as after one uninterrupted run: someone only the first listing had and who was
    never loaded is missing (nobody is deleted); after a clean run, people nobody lists go."""
    await (await lake.start_run("person")).finish(complete=True)  # an empty lake, complete
    first = await lake.start_run("person")
    await first.load([person(n) for n in range(1, 31)])
    await first.finish(complete=True)
    await interrupted_run(lake, range(1, 31), range(1, 11))

    run = await lake.start_run("person", resume=True)
    await run.list_keys([uid(n) for n in range(1, 30)])  # 30 is no longer listed
    await run.load([person(n) for n in range(11, 30)])
    summary = await run.finish(complete=True)

    assert (summary.status, summary.missing, summary.deleted) == ("partial", 1, 0)
    assert summary.missing_sample == [uid(30)]
    assert len(await live(conn)) == 30


async def test_nothing_is_resumed_after_a_finished_run_or_past_the_window(lake: Lake, conn):
    await interrupted_run(lake, range(1, 11), range(1, 6))
    stale = await lake.start_run("person", resume=True, fresh_for_s=0)
    assert (stale.resumed_from, stale.carried) == (None, 0)
    assert await stale.pending_keys() == []  # its seen keys went: it starts from nothing
    await stale.load([person(n) for n in range(1, 11)])
    await stale.finish(complete=True)

    after_complete = await lake.start_run("person", resume=True)

    assert after_complete.resumed_from is None
    await after_complete.fail("test over")


async def test_a_chain_of_resumes_keeps_the_first_runs_start(lake: Lake, conn):
    """The window counts from when the kept work began, not from the latest attempt."""
    first = await interrupted_run(lake, range(1, 11), range(1, 4))
    second = await lake.start_run("person", resume=True)
    await second.load([person(n) for n in range(4, 7)])
    await second.fail("again")
    started = await conn.fetchval("SELECT started FROM lake.runs WHERE run_id = $1", first)

    third = await lake.start_run("person", resume=True)

    assert (third.resumed_from, third.carried) == (second.run_id, 6)
    fresh_since = await conn.fetchval(
        "SELECT fresh_since FROM lake.runs WHERE run_id = $1", third.run_id
    )
    assert fresh_since == started
    assert await third.pending_keys() == [uid(n) for n in range(7, 11)]
    await third.fail("test over")


async def test_a_run_without_resume_starts_from_nothing(lake: Lake, conn):
    await interrupted_run(lake, range(1, 11), range(1, 6))

    run = await lake.start_run("person")

    assert run.resumed_from is None
    assert await conn.fetchval("SELECT count(*) FROM lake.person_seen") == 0
    await run.fail("test over")


# --- shards -----------------------------------------------------------------------------------


async def test_the_shards_of_the_pending_keys_are_disjoint_and_cover_them(lake: Lake):
    run = await lake.start_run("person")
    await run.list_keys([uid(n) for n in range(1, 1001)])
    await run.load([person(n) for n in range(1, 101)])

    shares = [await run.pending_keys(shard=i, shards=3) for i in range(3)]

    assert sorted(k for share in shares for k in share) == [uid(n) for n in range(101, 1001)]
    assert sum(len(share) for share in shares) == 900
    assert all(200 < len(share) < 400 for share in shares), [len(s) for s in shares]
    with pytest.raises(LakeError, match="shard 3 of 3 does not exist"):
        await run.pending_keys(shard=3, shards=3)
    await run.fail("test over")


async def test_a_joined_shard_loads_into_the_run_and_only_its_starter_finishes(
    lake: Lake, pool: asyncpg.Pool, conn
):
    run = await lake.start_run("person")
    await run.list_keys([uid(n) for n in range(1, 21)])
    shard = await Lake(pool).join_run("person", run.run_id)

    await shard.load([person(n) for n in range(1, 11)])
    with pytest.raises(LakeError, match="only the process that started the run can finish"):
        await shard.finish(complete=True)
    await run.load([person(n) for n in range(11, 21)])
    summary = await run.finish(complete=True)

    assert (summary.status, summary.inserted) == ("complete", 20)
    with pytest.raises(LakeError, match="is complete: there is nothing to join"):
        await Lake(pool).join_run("person", run.run_id)


async def test_a_shard_cannot_load_once_its_starter_lost_the_writer_lock(lake: Lake, pool, conn):
    run = await lake.start_run("person")
    shard = await Lake(pool).join_run("person", run.run_id)
    run._writer.terminate()  # the parent process died

    with pytest.raises(LakeError, match="no longer holds the person writer lock"):
        await shard.load([person(1)])
    assert await live(conn) == set()
