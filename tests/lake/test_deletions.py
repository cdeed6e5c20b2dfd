"""Complete snapshots delete what they no longer hold; partial loads never delete."""

from __future__ import annotations

import pytest

from dataload.lake import Lake, LakeError

from .people import person


async def load_run(lake: Lake, records, *, complete: bool):
    run = await lake.start_run("person")
    await run.load(records)
    # A handful of people: any deletion is a large share (the guard has tests of its own).
    return await run.finish(complete=complete, allow_mass_delete=True)


async def state(conn, buid: str):
    return await conn.fetchrow(
        "SELECT deleted_at IS NOT NULL AS deleted, person_data IS NOT NULL AS kept"
        " FROM person_xform.current_person_data WHERE bu_uid = $1",
        buid,
    )


async def curated_rows(conn, buid: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM person_curated.person_data_by_service WHERE bu_uid = $1", buid
    )


async def test_a_complete_snapshot_marks_absent_keys_deleted_in_every_layer(lake: Lake, conn):
    await load_run(lake, [person(1), person(2), person(3)], complete=True)

    summary = await load_run(lake, [person(1), person(3)], complete=True)

    assert (summary.status, summary.deleted, summary.unchanged) == ("complete", 1, 2)
    assert dict(await state(conn, "U00000002")) == {"deleted": True, "kept": True}
    assert await curated_rows(conn, "U00000002") == 0
    assert await curated_rows(conn, "U00000001") > 0
    last = await conn.fetchrow(
        "SELECT deleted, person_data, run_id FROM person_raw.person_data"
        " WHERE bu_uid = 'U00000002' ORDER BY raw_id DESC LIMIT 1"
    )
    assert (last["deleted"], last["person_data"], last["run_id"]) == (True, None, summary.run_id)
    assert await lake.current_count("person") == 2


async def test_a_partial_load_never_deletes(lake: Lake, conn):
    await load_run(lake, [person(1), person(2)], complete=True)

    summary = await load_run(lake, [person(1)], complete=False)

    assert (summary.status, summary.deleted) == ("partial", 0)
    assert dict(await state(conn, "U00000002"))["deleted"] is False


async def test_a_failed_run_never_deletes_and_keeps_what_it_loaded(lake: Lake, conn):
    await load_run(lake, [person(1), person(2)], complete=True)
    run = await lake.start_run("person")
    await run.load([person(3)])

    summary = await run.fail("SnapLogic timed out")

    assert (summary.status, summary.error, summary.deleted) == ("failed", "SnapLogic timed out", 0)
    assert await lake.current_count("person") == 3
    # The keys it saw stay for a run that resumes it; the next run that does not drops them.
    assert await conn.fetchval("SELECT count(*) FROM lake.person_seen") == 1
    await (await lake.start_run("person")).fail("test over")
    assert await conn.fetchval("SELECT count(*) FROM lake.person_seen") == 0


async def test_a_deleted_key_that_comes_back_is_live_again_with_a_new_version(lake: Lake, conn):
    await load_run(lake, [person(1), person(2)], complete=True)
    await load_run(lake, [person(1)], complete=True)

    summary = await load_run(lake, [person(1), person(2)], complete=True)

    assert (summary.inserted, summary.unchanged, summary.deleted) == (1, 1, 0)
    assert dict(await state(conn, "U00000002"))["deleted"] is False
    assert await curated_rows(conn, "U00000002") > 0
    versions = await conn.fetch(
        "SELECT deleted FROM person_raw.person_data WHERE bu_uid = 'U00000002' ORDER BY raw_id"
    )
    assert [v["deleted"] for v in versions] == [False, True, False]


async def test_a_record_rejected_for_its_content_is_not_deleted_by_a_snapshot(lake: Lake, conn):
    await load_run(lake, [person(1), person(2)], complete=True)
    broken = {**person(2), "note": "NUL \x00"}

    summary = await load_run(lake, [person(1), broken], complete=True)

    assert (summary.rejected, summary.deleted) == (1, 0)
    assert dict(await state(conn, "U00000002"))["deleted"] is False


async def test_deletions_only_touch_the_run_domain(lake: Lake, conn):
    term = {"ACAD_CAREER": "UGRD", "STRM": "2268", "DESCR": "Fall 2026"}
    run = await lake.start_run("term")
    await run.load([term])
    await run.finish(complete=True)

    await load_run(lake, [person(1)], complete=True)

    assert await lake.current_count("term") == 1


def course(term: str, course_id: int, title: str = "Intro") -> dict:
    return {
        "academicCareer": "UGRD",
        "termCode": term,
        "courseId": course_id,
        "sessionCode": "1",
        "title": title,
    }


async def test_a_scoped_snapshot_deletes_only_inside_its_scope(lake: Lake, conn):
    run = await lake.start_run("course")
    await run.load([course("2262", 1), course("2268", 2), course("2268", 3)])
    await run.finish(complete=True)

    # The next snapshot covers term 2268 only: course 3 is gone from it, 2262's is not asked.
    run = await lake.start_run("course")
    await run.load([course("2268", 2)])
    summary = await run.finish(complete=True, scope={"term_code": ["2268"]}, allow_mass_delete=True)

    assert summary.deleted == 1
    live = await conn.fetch(
        "SELECT term_code, course_id FROM course_xform.current_course_data"
        " WHERE deleted_at IS NULL ORDER BY course_id"
    )
    assert [tuple(r) for r in live] == [("2262", 1), ("2268", 2)]


async def test_a_scope_on_a_column_that_is_not_a_key_is_refused(lake: Lake, conn):
    await load_run(lake, [person(1), person(2)], complete=True)
    run = await lake.start_run("person")
    await run.load([person(1)])

    with pytest.raises(LakeError, match="not key columns of person"):
        await run.finish(complete=True, scope={"term_code": ["2268"]})
    assert dict(await state(conn, "U00000002"))["deleted"] is False


async def test_a_run_ends_once(lake: Lake):
    run = await lake.start_run("person")
    await run.fail("first")

    with pytest.raises(LakeError, match="already failed"):
        await run.fail("second")
    with pytest.raises(LakeError, match="already failed"):
        await run.finish(complete=True)
