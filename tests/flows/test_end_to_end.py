"""Day 1 then day 2 of the sandbox university through the three flows, checked against the
sandbox's own truth of each day."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from tests.flows.world import World

from dataload.flows import FLOWS, LoadReport
from dataload.sandbox.truth import course_truth, person_truth, term_truth

pytestmark = pytest.mark.slow

SENSITIVE = r'"(ssn|sexualorientation|finaid[^"]*)"\s*:'
LAYERS = {
    "raw": "{d}_raw.{d}_data",
    "xform": "{d}_xform.current_{d}_data",
    "curated": "{d}_curated.{d}_data_by_service",
}


async def run_all_flows() -> dict[str, LoadReport]:
    return {name: await flow() for name, flow in FLOWS.items()}


def course_key(row: list[object]) -> tuple[str, str, int, str]:
    career, term, course_id, session = row
    return str(career), str(term), int(course_id), str(session)


async def course_keys(world: World, sql_filter: str = "true", *args: object) -> set[tuple]:
    rows = await world.conn.fetch(
        "SELECT academic_career, term_code, course_id, session_code "
        f"FROM course_xform.current_course_data WHERE {sql_filter}",
        *args,
    )
    return {tuple(row) for row in rows}


async def assert_no_sensitive_field(world: World) -> None:
    for domain in ("term", "course", "person"):
        for layer, table in LAYERS.items():
            found = await world.count(
                f"SELECT count(*) FROM {table.format(d=domain)} WHERE {domain}_data::text ~* $1",
                SENSITIVE,
            )
            assert found == 0, f"{found} {domain} {layer} rows hold a sensitive field"


async def test_day_one_loads_every_layer_as_the_sources_say(world: World) -> None:
    config = world.sandbox.config
    reports = await run_all_flows()

    assert {name: report.status for name, report in reports.items()} == dict.fromkeys(
        FLOWS, "complete"
    )
    terms = term_truth(config, 1)
    assert await world.count(
        "SELECT count(*) FROM term_xform.current_term_data WHERE deleted_at IS NULL"
    ) == len(terms["rows"])
    active = sorted(terms["active_ugrd_terms"])
    assert (
        await world.column(
            "SELECT strm FROM term_curated.term_data_by_service "
            "WHERE service = 'active_terms' ORDER BY strm"
        )
        == active
    )

    courses = course_truth(config, 1, active)
    assert await course_keys(world) == {course_key(row) for row in courses["courses"]}
    assert {key[1] for key in await course_keys(world)} <= set(active)

    people = person_truth(config, 1)
    live = await world.column(
        "SELECT bu_uid FROM person_xform.current_person_data WHERE deleted_at IS NULL"
    )
    assert sorted(live) == sorted(people.flow_ids)
    for domain in ("term", "course", "person"):
        assert reports[domain].services["full"] == reports[domain].layers["xform_live"] > 0
    # A new lake gets the shipped services: curated holds more than the `full` copies.
    for domain in ("course", "person"):
        assert set(reports[domain].services) - {"full"}, f"no {domain} service rows"
    await assert_no_sensitive_field(world)


async def test_day_two_records_history_only_for_real_changes_and_marks_deletions(
    world: World,
) -> None:
    config = world.sandbox.config
    await run_all_flows()
    before = person_truth(config, 1)
    config.day = 2
    after = person_truth(config, 2)
    reports = await run_all_flows()

    assert {name: report.status for name, report in reports.items()} == dict.fromkeys(
        FLOWS, "complete"
    )
    run_id = reports["person"].run_id
    history = set(
        await world.column(
            "SELECT bu_uid FROM person_raw.person_data WHERE run_id = $1 AND NOT deleted", run_id
        )
    )
    was_listed, is_listed = set(before.flow_ids), set(after.flow_ids)
    expected = {buid for buid in is_listed if buid not in was_listed or buid in after.changed}
    assert history == expected
    shuffled = set(after.shuffled) & was_listed & is_listed
    assert shuffled, "the test university should shuffle someone's arrays on day 2"
    assert not history & shuffled

    gone = was_listed - is_listed
    assert gone, "the test university should lose someone on day 2"
    deleted = await world.column(
        "SELECT bu_uid FROM person_raw.person_data WHERE run_id = $1 AND deleted", run_id
    )
    assert sorted(deleted) == sorted(gone)
    assert reports["person"].counts["deleted"] == len(gone)
    assert sorted(
        await world.column(
            "SELECT bu_uid FROM person_xform.current_person_data WHERE deleted_at IS NOT NULL"
        )
    ) == sorted(gone)
    assert not await world.count(
        "SELECT count(*) FROM person_curated.person_data_by_service WHERE bu_uid = ANY($1)",
        list(gone),
    )

    terms = term_truth(config, 2)
    term_history = await world.column(
        "SELECT acad_career || '/' || strm FROM term_raw.term_data WHERE run_id = $1",
        reports["term"].run_id,
    )
    # Terms only renumbered by a term inserted before them are not changes.
    assert sorted(term_history) == sorted(
        f"{career}/{strm}" for career, strm in terms["arrived"] + terms["changed"]
    )

    active = sorted(terms["active_ugrd_terms"])
    courses = course_truth(config, 2, active)
    live_courses = await course_keys(world, "deleted_at IS NULL AND term_code = ANY($1)", active)
    assert live_courses == {course_key(row) for row in courses["courses"]}
    cancelled = {course_key(row) for row in courses["left"]}
    assert await course_keys(world, "deleted_at IS NOT NULL") == cancelled
    await assert_no_sensitive_field(world)


async def test_each_run_publishes_its_summary_table_in_prefect(world: World) -> None:
    report = await FLOWS["term"]()

    async with get_client() as client:
        artifacts = await client.read_latest_artifacts()
    by_key = {artifact.key: artifact for artifact in artifacts}
    artifact = by_key["term-load-summary"]
    assert artifact.type == "table"
    assert f'"value": {report.run_id}' in artifact.data or str(report.run_id) in artifact.data
    assert '"curated service"' in artifact.data and '"active_terms"' in artifact.data
