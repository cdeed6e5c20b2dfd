"""The lake's own guarantees, whoever writes: deletions only from a complete listing, the
mass-deletion guard, one writer per domain, abandoned runs, durable run state, insert-only raw,
never-store fields and records it refuses."""

from __future__ import annotations

import asyncio
import math

import asyncpg
import pytest

from dataload.lake import Lake, LakeError, WriterBusy
from dataload.lake.load import _LIST_CHUNK

from .people import person


async def live(conn) -> list[str]:
    return [
        r[0]
        for r in await conn.fetch(
            "SELECT bu_uid FROM person_xform.current_person_data"
            " WHERE deleted_at IS NULL ORDER BY bu_uid"
        )
    ]


async def load_people(lake: Lake, numbers, **finish):
    run = await lake.start_run("person")
    await run.load([person(n) for n in numbers])
    return await run.finish(complete=True, **finish)


# --- deletions only from positive evidence --------------------------------------------------


async def test_listed_people_who_never_arrive_are_missing_and_nobody_is_deleted(lake: Lake, conn):
    await load_people(lake, range(1, 41))
    run = await lake.start_run("person")
    # Everyone but 40 is listed; 3..12 are listed but their documents never came.
    await run.list_keys([f"U{n:08d}" for n in range(1, 40)])
    await run.load([person(n) for n in [1, 2, *range(13, 40)]])

    summary = await run.finish(complete=True)

    assert (summary.status, summary.deleted, summary.missing) == ("partial", 0, 10)
    assert summary.missing_sample == [f"U{n:08d}" for n in range(3, 13)]
    assert (
        "deleted nobody" in summary.outcome and "10 listed keys were not loaded" in summary.outcome
    )
    assert len(await live(conn)) == 40  # 40, unlisted, is not deleted by a partial run either


async def test_a_complete_listing_deletes_only_keys_nobody_lists(lake: Lake, conn):
    await load_people(lake, range(1, 41))
    run = await lake.start_run("person")
    await run.list_keys([f"U{n:08d}" for n in range(1, 40)])  # 40 left
    await run.load([person(n) for n in range(1, 40)])

    summary = await run.finish(complete=True)

    assert (summary.status, summary.deleted, summary.listed) == ("complete", 1, 39)
    assert "U00000040" not in await live(conn)
    assert summary.outcome == "stored 0 new and 0 changed records, deleted 1"


async def test_a_listing_of_several_chunks_is_declared_whole_from_any_iterable(lake: Lake):
    run = await lake.start_run("person")
    listing = (f"U{n:08d}" for n in range(1, 2 * _LIST_CHUNK + 2))  # two chunks and one key

    assert await run.list_keys(listing) == 2 * _LIST_CHUNK + 1
    summary = await run.finish(complete=True)  # nobody loaded: everyone listed is missing

    assert (summary.status, summary.listed, summary.missing) == (
        "partial",
        *[2 * _LIST_CHUNK + 1] * 2,
    )


async def test_the_missing_are_counted_even_when_some_records_came_unlisted(lake: Lake, conn):
    run = await lake.start_run("person")
    await run.list_keys(["U00000001", "U00000002"])
    await run.load([person(1), person(3)])  # 3 came without being listed: stored all the same

    summary = await run.finish(complete=True)

    assert (summary.status, summary.missing, summary.inserted) == ("partial", 1, 2)


# --- the mass-deletion guard ----------------------------------------------------------------


async def test_a_run_deleting_more_than_the_guard_deletes_nobody_and_ends_guarded(lake: Lake, conn):
    await load_people(lake, range(1, 101))

    summary = await load_people(lake, range(1, 90))  # 11 of 100 gone: above 5%

    assert (summary.status, summary.deleted) == ("guarded", 0)
    assert "would have deleted 11 of 100 live records (11.0%)" in summary.outcome
    assert len(await live(conn)) == 100
    assert await conn.fetchval("SELECT count(*) FROM person_raw.person_data WHERE deleted") == 0


async def test_within_the_guard_or_allowed_a_run_deletes(lake: Lake, conn):
    await load_people(lake, range(1, 101))

    within = await load_people(lake, range(1, 96))  # 5 of 100: at the limit, not above
    allowed = await load_people(lake, range(1, 50), allow_mass_delete=True)

    assert (within.status, within.deleted) == ("complete", 5)
    assert (allowed.status, allowed.deleted) == ("complete", 46)
    assert len(await live(conn)) == 49


# --- one writer per domain ------------------------------------------------------------------


async def test_a_second_run_of_a_domain_is_refused_naming_the_first(lake: Lake):
    first = await lake.start_run("person", flow_run_id="flow-run-1")

    with pytest.raises(WriterBusy, match=rf"person run {first.run_id} is loading .*flow-run-1"):
        await lake.start_run("person")
    other_domain = await lake.start_run("term")  # other domains are not held up

    await first.finish(complete=False)
    await other_domain.finish(complete=False)
    second = await lake.start_run("person")
    await second.finish(complete=False)


async def test_a_second_run_waits_for_the_first_when_asked_to(lake: Lake):
    first = await lake.start_run("person")

    async def finish_soon():
        await asyncio.sleep(1.0)
        await first.finish(complete=False)

    finisher = asyncio.ensure_future(finish_soon())
    second = await lake.start_run("person", wait_s=20)
    await finisher

    assert second.run_id > first.run_id
    await second.finish(complete=False)


async def test_a_run_whose_session_died_is_abandoned_by_the_next(lake: Lake, conn):
    await load_people(lake, range(1, 11))
    dead = await lake.start_run("person")
    await dead.load([person(n) for n in range(1, 6)])
    pid = await conn.fetchval("SELECT writer_pid FROM lake.runs WHERE run_id = $1", dead.run_id)
    # What PostgreSQL sees when the loader's process is killed: its sessions end. Terminating
    # only signals the backend; it ends (and frees the lock) a moment later, and under load
    # the next statement came first (the test failed once so). Wait until it has ended.
    assert await conn.fetchval("SELECT pg_terminate_backend($1, 30000)", pid)

    with pytest.raises(LakeError, match="no longer holds the person writer lock"):
        await dead.load([person(6)])
    nxt = await lake.start_run("person")

    run = await conn.fetchrow(
        "SELECT status, outcome FROM lake.runs WHERE run_id = $1", dead.run_id
    )
    assert run["status"] == "abandoned"
    assert run["outcome"] == (
        "stored 0 new and 0 changed records before it stopped, deleted nobody: "
        "its process died or lost its database session"
    )
    assert await conn.fetchval("SELECT count(*) FROM lake.person_seen") == 0
    await nxt.load([person(n) for n in range(1, 11)])
    assert (await nxt.finish(complete=True)).status == "complete"
    assert len(await live(conn)) == 10


async def test_a_run_that_outlived_a_server_restart_can_neither_load_nor_delete(lake: Lake, conn):
    await load_people(lake, range(1, 11))
    run = await lake.start_run("person")
    # As if the server had restarted since the run began (the chaos suite kills a real one).
    await conn.execute(
        "UPDATE lake.runs SET server_started = server_started - interval '1 hour'"
        " WHERE run_id = $1",
        run.run_id,
    )

    with pytest.raises(LakeError, match="started before the database server restarted"):
        await run.load([person(1)])
    with pytest.raises(LakeError, match="nothing was deleted"):
        await run.finish(complete=True)
    assert len(await live(conn)) == 10


# --- durable run state ----------------------------------------------------------------------


async def test_what_decides_deletions_is_logged(conn):
    unlogged = await conn.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'lake' AND c.relpersistence <> 'p' AND c.relkind = 'r'"
    )
    assert unlogged == 0


async def test_the_loader_commits_durably_whatever_the_server_default(pool):
    async with pool.acquire() as c:
        assert await c.fetchval("SHOW synchronous_commit") == "on"


# --- raw is insert-only ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE person_raw.person_data SET deleted = deleted",
        "DELETE FROM person_raw.person_data",
        "TRUNCATE person_raw.person_data",
    ],
)
async def test_raw_refuses_rewrites(lake: Lake, conn, statement: str):
    await load_people(lake, range(1, 3))

    with pytest.raises(asyncpg.PostgresError, match="insert-only history") as refused:
        await conn.execute(statement)
    assert "SET LOCAL dataload.allow_raw_rewrite = on" in refused.value.hint
    assert await conn.fetchval("SELECT count(*) FROM person_raw.person_data") == 2


async def test_an_administrator_may_rewrite_raw_for_one_transaction(lake: Lake, conn):
    await load_people(lake, range(1, 3))

    async with conn.transaction():
        await conn.execute("SET LOCAL dataload.allow_raw_rewrite = on")
        await conn.execute("DELETE FROM person_raw.person_data WHERE bu_uid = 'U00000001'")

    assert await conn.fetchval("SELECT count(*) FROM person_raw.person_data") == 1
    with pytest.raises(asyncpg.PostgresError, match="insert-only"):
        await conn.execute("DELETE FROM person_raw.person_data")


async def test_one_insert_with_a_key_twice_adds_one_version(conn):
    doc = '{"personid": "U1", "name": "Ada"}'
    await conn.execute(
        "INSERT INTO person_raw.person_data (bu_uid, person_data)"
        " VALUES ('U1', $1::jsonb), ('U1', $1::jsonb), ('U1', $1::jsonb)",
        doc,
    )
    await conn.execute(
        "INSERT INTO person_raw.person_data (bu_uid, deleted)"
        " VALUES ('U1', true), ('U1', true), ('U2', true)"
    )

    versions = await conn.fetch(
        "SELECT bu_uid, deleted FROM person_raw.person_data ORDER BY raw_id"
    )
    assert [tuple(v) for v in versions] == [("U1", False), ("U1", True)]


async def test_a_new_key_stored_and_deleted_in_one_statement_is_a_deleted_xform_row(conn):
    await conn.execute(
        "INSERT INTO person_raw.person_data (bu_uid, person_data, deleted)"
        ' VALUES (\'U1\', \'{"personid": "U1", "name": "Ada"}\', false), (\'U1\', NULL, true)'
    )

    row = await conn.fetchrow(
        "SELECT person_data ->> 'name' AS name, deleted_at IS NOT NULL AS deleted"
        " FROM person_xform.current_person_data WHERE bu_uid = 'U1'"
    )
    assert dict(row) == {"name": "Ada", "deleted": True}
    assert await conn.fetchval("SELECT count(*) FROM person_curated.person_data_by_service") == 0


# --- never-store fields and refused records, whoever writes ---------------------------------

SENSITIVE = {
    "ssn": "123-45-6789",
    "SexualOrientation": "x",
    "studentInfo": {"finAidStatus": "A", "gpa": 3.5, "terms": [{"finAidAward": 1, "t": "2268"}]},
}


async def test_never_store_fields_are_stripped_from_records_given_to_the_loader(lake: Lake, conn):
    record = {**person(1), **SENSITIVE}
    run = await lake.start_run("person")
    await run.load([record])
    await run.finish(complete=False)

    stored = await conn.fetchval("SELECT person_data::text FROM person_raw.person_data")
    assert not any(word in stored.lower() for word in ("ssn", "sexualorientation", "finaid"))
    assert '"gpa": 3.5' in stored and '"t": "2268"' in stored
    assert "ssn" in record  # the caller's record is left as it was


async def test_never_store_fields_are_stripped_from_rows_written_by_hand(conn):
    import orjson

    await conn.execute(
        "INSERT INTO person_raw.person_data (bu_uid, person_data) VALUES ('U1', $1::jsonb)",
        orjson.dumps({"personid": "U1", **SENSITIVE}).decode(),
    )

    for table in ("person_raw.person_data", "person_xform.current_person_data"):
        stored = await conn.fetchval(f"SELECT person_data::text FROM {table}")
        assert not any(w in stored.lower() for w in ("ssn", "sexualorientation", "finaid"))
        assert '"gpa": 3.5' in stored


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"deeper": value}
    return value


async def test_bad_records_are_rejected_with_reasons_and_the_rest_loads(lake: Lake, conn):
    records = [
        {**person(1), "tree": nested(1000)},
        {**person(2), "gpa": math.nan},
        {**person(3), "scores": [1.0, math.inf]},
        {**person(4), "personid": "   "},
        person(5),
    ]
    run = await lake.start_run("person")

    result = await run.load(records)
    await run.finish(complete=False)

    assert (result.inserted, result.rejected) == (1, 4)
    reasons = await conn.fetch("SELECT reason FROM lake.rejected ORDER BY reason")
    assert [r[0] for r in reasons] == [
        "blank key field 'personid'",
        "content refused: a number is inf, which JSON cannot carry",
        "content refused: a number is nan, which JSON cannot carry",
        "content refused: nested deeper than 254 levels",
    ]
    assert await live(conn) == ["U00000005"]


async def test_a_record_sent_again_with_a_never_store_field_is_unchanged(lake: Lake, conn):
    run = await lake.start_run("person")
    await run.load([person(1)])
    await run.finish(complete=False)
    run = await lake.start_run("person")

    again = await run.load([{**person(1), "SSN": "123-45-6789"}])
    await run.finish(complete=False)

    assert (again.unchanged, again.changed, again.inserted) == (1, 0, 0)
    stored = await conn.fetch("SELECT person_data::text AS t FROM person_raw.person_data")
    assert len(stored) == 1 and "ssn" not in stored[0]["t"].lower()
