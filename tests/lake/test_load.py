"""The write path: change detection, propagation to every layer, counts, atomic batches."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import orjson
import pytest

from dataload.lake import Lake, LakeError, LoadRun, RunSummary
from dataload.lake.canonical import content_hash
from dataload.lake.load import run_summary as read_summary

from .people import person, shuffled


async def raw_count(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM person_raw.person_data")


async def test_first_load_fills_raw_xform_and_every_curated_service(lake: Lake, conn):
    run = await lake.start_run("person", flow="test")
    result = await run.load([person(1), person(2, student=False)])

    assert (result.offered, result.inserted, result.changed, result.unchanged) == (2, 2, 0, 0)
    assert await raw_count(conn) == 2
    current = await conn.fetchval(
        "SELECT person_data FROM person_xform.current_person_data WHERE bu_uid = 'U00000001'"
    )
    assert current is not None
    services = {
        r["service"]
        for r in await conn.fetch(
            "SELECT service FROM person_curated.person_data_by_service WHERE bu_uid = 'U00000001'"
        )
    }
    assert {"full", "student", "studentGPA", "bioDemo", "studentContactInfo"} <= services
    non_student = {
        r["service"]
        for r in await conn.fetch(
            "SELECT service FROM person_curated.person_data_by_service WHERE bu_uid = 'U00000002'"
        )
    }
    assert "studentGPA" not in non_student and "full" in non_student


async def run_summary(lake: Lake, run: LoadRun) -> RunSummary:
    return await read_summary(run.pool, run.run_id)


async def next_run(lake: Lake, run: LoadRun) -> LoadRun:
    """The next run of the domain, once this one ended (deleting nobody)."""
    await run.finish(complete=False)
    return await lake.start_run(run.domain.name)


async def test_reloading_unchanged_records_adds_nothing_to_raw(lake: Lake, conn):
    run = await lake.start_run("person")
    await run.load([person(n) for n in range(5)])
    before = await conn.fetch(
        "SELECT service, bu_uid, modified_date FROM person_curated.person_data_by_service"
    )

    result = await (await next_run(lake, run)).load([person(n) for n in range(5)])

    assert (result.inserted, result.changed, result.unchanged) == (0, 0, 5)
    assert await raw_count(conn) == 5
    after = await conn.fetch(
        "SELECT service, bu_uid, modified_date FROM person_curated.person_data_by_service"
    )
    assert sorted(map(tuple, after)) == sorted(map(tuple, before))


async def test_shuffled_arrays_and_key_order_add_no_history(lake: Lake, conn):
    run = await lake.start_run("person")
    await run.load([person(1)])

    result = await (await next_run(lake, run)).load([shuffled(person(1))])

    assert result.unchanged == 1
    assert await raw_count(conn) == 1


async def test_a_record_a_run_offers_again_is_a_repeat_or_with_other_content_a_rejection(
    lake: Lake, conn
):
    run = await lake.start_run("person")
    await run.load([person(1), person(2)])

    again = await run.load([shuffled(person(1)), person(2, gpa=3.9), person(3)])
    await run.finish(complete=False)

    assert (again.inserted, again.changed, again.unchanged) == (1, 0, 0)
    assert (again.repeated, again.rejected) == (1, 1)
    reason = await conn.fetchval("SELECT reason FROM lake.rejected")
    assert reason == "key ('U00000002',) offered again in this run with other content"
    assert await raw_count(conn) == 3
    summary = await run_summary(lake, run)
    assert (summary.repeated, summary.unchanged) == (1, 0)


async def test_a_changed_record_adds_one_version_and_rewrites_only_services_it_touches(
    lake: Lake, conn
):
    run = await lake.start_run("person")
    await run.load([person(1, gpa=3.1)])
    dates = dict(
        await conn.fetch("SELECT service, modified_date FROM person_curated.person_data_by_service")
    )

    result = await (await next_run(lake, run)).load([person(1, gpa=3.9)])

    assert (result.changed, result.inserted) == (1, 0)
    assert await raw_count(conn) == 2
    gpa = await conn.fetchval(
        "SELECT person_data #>> '{studentInfo,studentSemester,0,studentSemesterInfo,currentGpa}'"
        " FROM person_curated.person_data_by_service WHERE service = 'studentGPA'"
    )
    assert gpa == "3.9"
    after = dict(
        await conn.fetch("SELECT service, modified_date FROM person_curated.person_data_by_service")
    )
    assert after["bioDemo"] == dates["bioDemo"]
    assert after["studentGPA"] > dates["studentGPA"]
    assert after["full"] > dates["full"]


async def test_bad_records_are_rejected_counted_and_logged_while_the_rest_loads(
    lake: Lake, conn, caplog
):
    run = await lake.start_run("person")
    bad = [
        {"personBasic": {}},  # no key
        {"personid": 12345678},  # key of the wrong type
        ["not", "an", "object"],
        "text",
        {"personid": "U00000009", "count": 2**70},  # beyond 64 bits
        {"personid": "U00000010", "note": "nul \x00 inside"},
    ]
    with caplog.at_level(logging.WARNING, logger="dataload.lake"):
        result = await run.load([person(1), *bad, person(2)])

    assert (result.offered, result.inserted, result.rejected) == (8, 2, 6)
    assert await raw_count(conn) == 2
    reasons = [r["reason"] for r in await conn.fetch("SELECT reason FROM lake.rejected")]
    assert len(reasons) == 6
    assert any("missing key field 'personid'" in r for r in reasons)
    assert any("must be a string, got int" in r for r in reasons)
    assert any("not a JSON object but list" in r for r in reasons)
    assert any("NUL" in r for r in reasons)
    assert any("64-bit" in r for r in reasons)
    assert sum("record rejected" in m for m in caplog.messages) == 6
    summary = await run.finish(complete=False)
    assert (summary.offered, summary.inserted, summary.rejected) == (8, 2, 6)
    assert summary.rejected_reasons


async def test_a_database_error_mid_batch_leaves_nothing_in_any_layer(lake: Lake, conn):
    run = await lake.start_run("person")
    await run.load([person(1)])
    # A curated write that fails for one key, after raw and xform were written in the batch.
    await conn.execute(
        """
        CREATE FUNCTION pg_temp.explode() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.bu_uid = 'U00000003' THEN RAISE EXCEPTION 'disk on fire'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER explode BEFORE INSERT ON person_curated.person_data_by_service
        FOR EACH ROW EXECUTE FUNCTION pg_temp.explode();
        """
    )
    counts = await lake.layer_counts("person")

    with pytest.raises(LakeError, match=r"rolled back.*disk on fire"):
        await run.load([person(2), person(3, gpa=2.0), person(1, gpa=1.0)])

    assert await lake.layer_counts("person") == counts
    assert await conn.fetchval("SELECT count(*) FROM lake.person_seen") == 1
    ledger = await conn.fetchrow("SELECT offered, inserted, changed FROM lake.runs")
    assert tuple(ledger) == (1, 1, 0)


async def test_a_batch_copied_in_several_statements_is_still_one_transaction(lake: Lake, conn):
    # 700 records take three COPY statements; the last one fails.
    await conn.execute(
        """
        CREATE FUNCTION pg_temp.explode() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.bu_uid = 'U00000650' THEN RAISE EXCEPTION 'disk on fire'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER explode BEFORE INSERT ON person_xform.current_person_data
        FOR EACH ROW EXECUTE FUNCTION pg_temp.explode();
        """
    )
    run = await lake.start_run("person")

    with pytest.raises(LakeError, match=r"rolled back.*disk on fire"):
        await run.load([person(n) for n in range(700)])
    empty = await lake.layer_counts("person")
    await conn.execute("DROP TRIGGER explode ON person_xform.current_person_data")
    result = await run.load([person(n) for n in range(700)])

    assert empty == {"raw": 0, "xform_live": 0, "xform_deleted": 0, "curated": {}}
    assert (result.inserted, await raw_count(conn)) == (700, 700)
    assert (await lake.layer_counts("person"))["curated"]["full"] == 700


async def test_rows_inserted_from_psql_propagate_with_the_same_hash_as_the_loader(lake: Lake, conn):
    doc = person(7)
    await conn.execute(
        "INSERT INTO person_raw.person_data (bu_uid, person_data) VALUES ($1, $2::jsonb)",
        doc["personid"],
        orjson.dumps(doc).decode(),
    )
    stored = await conn.fetchval(
        "SELECT content_hash FROM person_xform.current_person_data WHERE bu_uid = $1",
        doc["personid"],
    )
    assert stored == content_hash(doc)
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM person_curated.person_data_by_service WHERE bu_uid = $1",
            doc["personid"],
        )
        > 1
    )

    # The same content again, from psql or from a load, is not a new version.
    await conn.execute(
        "INSERT INTO person_raw.person_data (bu_uid, person_data) VALUES ($1, $2::jsonb)",
        doc["personid"],
        orjson.dumps(shuffled(doc)).decode(),
    )
    run = await lake.start_run("person")
    assert (await run.load([doc])).unchanged == 1
    assert await raw_count(conn) == 1


async def test_concurrent_batches_of_one_run_all_load(lake: Lake, conn):
    run = await lake.start_run("person")
    batches = [[person(b * 50 + n) for n in range(50)] for b in range(6)]

    results = await asyncio.gather(*(run.load(batch) for batch in batches))

    assert sum(r.inserted for r in results) == 300
    summary = await run.finish(complete=True)
    assert (summary.offered, summary.inserted, summary.deleted) == (300, 300, 0)
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM person_xform.current_person_data WHERE deleted_at IS NULL"
        )
        == 300
    )


async def test_load_stream_loads_every_batch(lake: Lake):
    async def batches():
        for b in range(4):
            yield [person(b * 10 + n) for n in range(10)]

    run = await lake.start_run("person")
    await run.load_stream(batches(), concurrency=2)
    summary = await run.finish(complete=False)

    assert (summary.status, summary.offered, summary.inserted) == ("partial", 40, 40)
    assert await lake.current_count("person") == 40


async def test_course_keys_are_typed_an_integer_course_id_and_text_codes(lake: Lake, conn):
    course = {
        "academicCareer": "UGRD",
        "termCode": "2268",
        "courseId": 123456,
        "sessionCode": "1",
        "title": "Data Lakes",
        "units": 4,
    }
    run = await lake.start_run("course")

    result = await run.load([course, {**course, "courseId": "123456"}])

    assert (result.inserted, result.rejected) == (1, 1)
    row = await conn.fetchrow("SELECT course_id, term_code FROM course_xform.current_course_data")
    assert tuple(row) == (123456, "2268")


async def test_an_unknown_domain_is_refused_with_the_known_ones(lake: Lake):
    with pytest.raises(LookupError, match=r"no domain 'people'.*course, person, term"):
        await lake.start_run("people")


async def test_a_finished_run_cannot_be_finished_again(lake: Lake):
    run = await lake.start_run("term")
    await run.finish(complete=False)
    with pytest.raises(LakeError, match="already partial"):
        await run.finish(complete=True)


async def test_a_finished_run_refuses_more_batches_and_keeps_nothing_of_them(lake: Lake, conn):
    run = await lake.start_run("person")
    await run.finish(complete=False)

    with pytest.raises(LakeError, match="already partial"):
        await run.load([person(1)])

    assert await raw_count(conn) == 0


async def test_concurrent_batches_with_overlapping_keys_neither_deadlock_nor_repeat(
    lake: Lake, conn
):
    run = await lake.start_run("person")
    people = [person(n) for n in range(200)]

    await asyncio.gather(run.load(people[:150]), run.load(people[50:]), run.load(people[150:]))

    assert await lake.current_count("person") == 200
    # Each person stored once: a key in two batches in flight is not inserted by both.
    assert await raw_count(conn) == 200
    mismatched = await conn.fetchval(
        "SELECT count(*) FROM person_xform.current_person_data x"
        " JOIN person_curated.person_data_by_service c"
        "   ON c.bu_uid = x.bu_uid AND c.service = 'full'"
        " WHERE c.person_data IS DISTINCT FROM x.person_data"
    )
    assert mismatched == 0
