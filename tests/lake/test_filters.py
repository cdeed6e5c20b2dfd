"""Service filters: path semantics, meaningful rows, re-derivation, validation."""

from __future__ import annotations

import orjson
import pytest

from dataload.lake import Lake
from dataload.lake.filters import (
    ServiceFilterError,
    read_services,
    seed_services,
    sync_services,
)

from .people import person

DOC = {
    "personid": "U1",
    "name": {"first": "Ana", "middle": None},
    "terms": [
        {"code": "2261", "info": {"gpa": 3.5, "level": "Junior"}, "classes": [{"id": 1}]},
        {"code": "2268", "info": {"level": "Senior"}},
        {"other": True},
    ],
    "grid": [[{"x": 1, "y": 2}], [{"y": 3}]],
    "empty": {"list": [], "none": None},
}


async def filtered(conn, paths: list[str], doc=DOC):
    value = await conn.fetchval(
        "SELECT lake.filter_record($1::jsonb, lake.compile_paths('t', $2), '{personid}')",
        orjson.dumps(doc).decode(),
        paths,
    )
    return None if value is None else orjson.loads(value)


async def test_paths_walk_objects_by_key_and_through_arrays_dropping_empty_elements(conn):
    assert await filtered(conn, ["/personid", "/terms/info/gpa", "/terms/code"]) == {
        "personid": "U1",
        "terms": [{"code": "2261", "info": {"gpa": 3.5}}, {"code": "2268"}],
    }


async def test_paths_walk_through_nested_arrays(conn):
    assert await filtered(conn, ["/grid/x"]) == {"grid": [[{"x": 1}]]}


async def test_a_leaf_keeps_its_value_whole_and_a_shorter_path_wins(conn):
    assert await filtered(conn, ["/personid", "/name", "/name/first"]) == {
        "personid": "U1",
        "name": {"first": "Ana", "middle": None},
    }


async def test_no_row_without_meaningful_data_beyond_the_key(conn):
    assert await filtered(conn, ["/personid"]) is None
    assert await filtered(conn, ["/personid", "/empty", "/name/middle"]) is None
    assert await filtered(conn, ["/personid", "/missing/path"]) is None
    assert await filtered(conn, ["/personid", "/name/first/below"]) is None


async def test_the_full_service_holds_the_whole_record(lake: Lake, conn):
    run = await lake.start_run("person")
    await run.load([person(1)])
    full = await conn.fetchval(
        "SELECT person_data FROM person_curated.person_data_by_service WHERE service = 'full'"
    )
    assert orjson.loads(full) == person(1)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "empty path"),
        ("//personid", 'has an empty segment ("//"'),
        ("/a//b", "has an empty segment"),
        ("/a/", "has an empty segment"),
        ("personid", 'does not start with "/"'),
    ],
)
async def test_invalid_paths_are_rejected_clearly_and_nothing_changes(conn, path, message):
    services = read_services()
    before = await conn.fetch("SELECT * FROM person_curated.person_schema_service_filters")
    services["person"]["bioDemo"] = ["/personid", "/personBasic"]  # a valid change...
    services["person"]["broken"] = ["/personid", path]  # ...and an invalid one

    with pytest.raises(ServiceFilterError, match="nothing was changed") as failure:
        await sync_services(conn, services)

    assert message in str(failure.value) and '"broken"' in str(failure.value)
    after = await conn.fetch("SELECT * FROM person_curated.person_schema_service_filters")
    assert after == before


async def test_changing_a_service_rederives_exactly_that_service(lake: Lake, conn):
    run = await lake.start_run("person")
    await run.load([person(n) for n in range(20)] + [person(99, student=False)])
    before = {
        (r["service"], r["bu_uid"]): r["modified_date"]
        for r in await conn.fetch(
            "SELECT service, bu_uid, modified_date FROM person_curated.person_data_by_service"
        )
    }
    services = read_services()
    services["person"]["studentAdvisor"] = ["/personid", "/studentInfo/advisors/role"]
    del services["person"]["emergencyContact"]
    services["person"]["phones"] = ["/personid", "/phone/number"]

    changes = await sync_services(conn, services)

    assert {(c.service, c.action) for c in changes if c.action != "unchanged"} == {
        ("studentAdvisor", "changed"),
        ("emergencyContact", "removed"),
        ("phones", "added"),
    }
    after = {
        (r["service"], r["bu_uid"]): (r["modified_date"], orjson.loads(r["person_data"]))
        for r in await conn.fetch(
            "SELECT service, bu_uid, modified_date, person_data"
            " FROM person_curated.person_data_by_service"
        )
    }
    for (service, buid), (modified, _) in after.items():
        if service not in ("studentAdvisor", "phones"):
            assert before[(service, buid)] == modified
    assert not any(service == "emergencyContact" for service, _ in after)
    assert sum(service == "phones" for service, _ in after) == 21
    advisor = after[("studentAdvisor", "U00000001")][1]
    assert advisor == {
        "personid": "U00000001",
        "studentInfo": {"advisors": [{"role": "Academic Advisor"}]},
    }
    assert ("studentAdvisor", "U00000099") not in after


async def test_the_shipped_services_file_has_the_starter_services(conn):
    person_services = set(read_services()["person"])
    assert {
        "student",
        "studentGPA",
        "studentClass",
        "studentAdvisor",
        "bioDemo",
        "studentContactInfo",
        "emergencyContact",
        "employeeGeneric",
        "employeeDepartment",
    } <= person_services
    assert read_services()["course"]
    rows = await conn.fetchval("SELECT count(*) FROM person_curated.person_schema_service_filters")
    assert rows == len(person_services)


async def test_reserved_service_names_are_refused(conn):
    with pytest.raises(ServiceFilterError, match="check constraint"):
        await sync_services(conn, {"person": {"full": ["/personid"]}})


async def test_seeding_fills_only_domains_without_services(conn):
    await sync_services(conn, {"person": {}, "course": {"mine": ["/title"]}})

    seeded = await seed_services(conn)

    assert {c.domain for c in seeded} == {"person"}
    courses = await conn.fetch("SELECT service FROM course_curated.course_schema_service_filters")
    assert [r[0] for r in courses] == ["mine"]


async def test_the_services_sync_command_reports_changes_and_refuses_bad_paths(
    run_cli, conn, tmp_path
):
    good = tmp_path / "good.toml"
    good.write_text('[person]\nbioDemo = ["/personid", "/personBasic"]\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('[person]\nbioDemo = ["/personid", "personBasic"]\n')

    refused = await run_cli("services", "sync", "--file", str(bad))
    synced = await run_cli("services", "sync", "--file", str(good))

    assert refused.exit_code == 1
    assert 'path "personBasic" does not start with "/"' in refused.output
    assert "nothing was changed" in refused.output
    assert synced.exit_code == 0, synced.output
    assert "changed   person.bioDemo" in synced.output
    assert "removed   person.studentGPA" in synced.output
    services = await conn.fetch("SELECT service FROM person_curated.person_schema_service_filters")
    assert [r[0] for r in services] == ["bioDemo"]
