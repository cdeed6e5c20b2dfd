"""The shape of every run, its drift against the last accepted shape, the services it breaks,
and contracts (lake/shape.py, R__shapes.sql), on PostgreSQL."""

from __future__ import annotations

import copy
from typing import Any

import asyncpg
import orjson
import pytest

from dataload.lake import Lake, RunSummary
from dataload.lake.canonical import NotCanonicalisable, content_hash
from dataload.lake.load import RejectionLimit
from dataload.lake.shape import ContractBroken, hashed_shape, record_shape

from .people import person, shuffled
from .test_canonical import AWKWARD

PEOPLE = 30


def renamed(doc: dict[str, Any]) -> dict[str, Any]:
    """The person with birthDate renamed dateOfBirth and currentGpa sent as text."""
    doc = copy.deepcopy(doc)
    doc["personBasic"]["dateOfBirth"] = doc["personBasic"].pop("birthDate")
    for semester in doc.get("studentInfo", {}).get("studentSemester", []):
        info = semester["studentSemesterInfo"]
        if info["currentGpa"] is not None:
            info["currentGpa"] = str(info["currentGpa"])
    return doc


def odd_person(n: int) -> dict[str, Any]:
    """A person whose birth date is a number: a shape the shipped services do not expect."""
    odd = person(n)
    odd["personBasic"]["birthDate"] = 20010203
    return odd


async def insert_from_psql(conn: asyncpg.Connection, record: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO person_raw.person_data (bu_uid, person_data) VALUES ($1, $2::jsonb)",
        record["personid"],
        orjson.dumps(record).decode(),
    )


async def load(lake: Lake, docs: list[dict[str, Any]], *, complete: bool = True) -> RunSummary:
    run = await lake.start_run("person", flow="test")
    await run.load(docs)
    return await run.finish(complete=complete)


async def test_python_and_sql_give_a_document_the_same_shape(conn: asyncpg.Connection) -> None:
    odd = {
        "personid": "U1",
        "a/b": {"~c": [[1, "x"], [], {}], "d": None},
        "e": [{"f": True}, {"f": 1.5}, {"g": []}],
        "h": {},
    }
    for doc in (person(1), person(2, student=False), shuffled(person(3)), odd):
        row = await conn.fetchrow(
            "SELECT * FROM lake.json_shape($1::jsonb)", orjson.dumps(doc).decode()
        )
        shape = record_shape(doc)
        assert (row["shape"], tuple(row["paths"]), tuple(row["types"])) == (
            shape.id,
            shape.paths,
            shape.types,
        )
    entries = set(record_shape(odd).entries())
    assert {("/a~1b/~0c[]", "array"), ("/a~1b/~0c[][]", "number"), ("/e[]/f", "boolean")} <= (
        entries
    )


def test_one_walk_gives_the_content_hash_and_the_shape_each_gives_alone() -> None:
    odd = {"a/b": {"~c": [[1, "x"], (2.5, None), [], {}], "d": None}, "e": [{"f": 1.0}, {}]}
    wide = {"ids": {f"U{n}": {"gpa": n / 7, "terms": [n, "x"]} for n in range(150)}}
    docs = [*(v for v in AWKWARD if isinstance(v, dict)), odd, wide, person(2, student=False)]
    docs += [shuffled(person(n)) for n in range(5)]
    for doc in docs * 2:  # the second time from the memos
        assert hashed_shape(doc) == (content_hash(doc), record_shape(doc))
    # A structure met before with other values is the same structure; other types are not.
    assert hashed_shape({"x": [1, "a"]})[1] == hashed_shape({"x": ["b", 2]})[1]
    assert hashed_shape({"x": [1, "a"]})[1] != hashed_shape({"x": [1, True]})[1]
    with pytest.raises(NotCanonicalisable, match="JSON cannot carry"):
        hashed_shape({"a": [1, {"b": float("nan")}]})


async def test_a_run_keeps_its_shape_and_an_unchanged_reload_walks_nothing(
    lake: Lake, conn: asyncpg.Connection
) -> None:
    first = await load(lake, [person(n) for n in range(PEOPLE)])
    shaped = await conn.fetchval("SELECT count(*) FROM lake.content_shapes")
    again = await load(lake, [shuffled(person(n)) for n in range(PEOPLE)])

    assert (first.schema_changes, again.schema_changes) == ([], [])
    assert await conn.fetchval("SELECT count(*) FROM lake.content_shapes") == shaped == PEOPLE
    paths = await conn.fetch(
        "SELECT run_id, path, type, records FROM lake.run_shape_paths"
        " WHERE path = '/personBasic/birthDate' ORDER BY run_id"
    )
    assert [(r["type"], r["records"]) for r in paths] == [("string", PEOPLE)] * 2
    accepted = await conn.fetch("SELECT accepted, records FROM lake.run_shapes ORDER BY run_id")
    assert [tuple(r) for r in accepted] == [(True, PEOPLE), (True, PEOPLE)]
    # The reload found the contents the first run tallied (the same sum of content hashes).
    sums = await conn.fetch("SELECT live_hash FROM lake.run_shapes ORDER BY run_id")
    assert sums[0]["live_hash"] is not None and sums[0] == sums[1]


async def test_a_run_that_stores_nothing_counts_again_when_the_live_contents_changed(
    lake: Lake, conn: asyncpg.Connection
) -> None:
    await load(lake, [person(n) for n in range(3)])
    # Written from psql: as many live records as before, one of other content.
    await insert_from_psql(conn, odd_person(1))
    summary = await load(lake, [person(0), person(2)], complete=False)

    assert (summary.inserted, summary.changed) == (0, 0)
    assert any(
        line.startswith("/personBasic/birthDate changed type: number in 1 of 3 records")
        for line in summary.schema_changes
    )


async def test_a_renamed_field_and_a_changed_type_are_drift_naming_the_services_they_break(
    lake: Lake, conn: asyncpg.Connection
) -> None:
    await load(lake, [person(n) for n in range(PEOPLE)])
    drifted = await load(lake, [renamed(person(n)) for n in range(PEOPLE)])
    calm = await load(lake, [renamed(person(n)) for n in range(PEOPLE)])

    lines = drifted.schema_changes
    vanished = [line for line in lines if line.startswith("/personBasic/birthDate vanished")]
    assert vanished and "in 30 of 30 records" in vanished[0]
    assert "(renamed to /personBasic/dateOfBirth?)" in vanished[0]
    assert any(
        line.startswith(
            "/studentInfo/studentSemester[]/studentSemesterInfo/currentGpa changed "
            "type: string in 30 of 30 records, was number"
        )
        for line in lines
    )
    assert any(line.startswith("/personBasic/dateOfBirth appeared: string") for line in lines)
    affected = {line.split(" affected:")[0] for line in lines if line.startswith("service ")}
    assert affected == {"service bioDemo", "service studentGPA"}
    assert (
        "service bioDemo affected: /personBasic/birthDate vanished in 30 of 30 records"
        " (renamed to /personBasic/dateOfBirth?)" in lines
    )
    # Keys of a few records concerned, never a value.
    assert "(e.g. U00000000" in vanished[0] and "2001-02-03" not in " ".join(lines)
    drift = await conn.fetch(
        "SELECT change, path, services FROM lake.shape_drift ORDER BY change, path"
    )
    assert ("vanished", "/personBasic/birthDate", ["bioDemo"]) in [tuple(r) for r in drift]
    # Accepted (evolve): the next run compares with the new shape and says nothing.
    assert calm.schema_changes == []


async def test_a_partial_run_reports_drift_but_its_shape_is_not_accepted(
    lake: Lake, conn: asyncpg.Connection
) -> None:
    await load(lake, [person(n) for n in range(PEOPLE)])
    partial = await load(lake, [renamed(person(n)) for n in range(PEOPLE)], complete=False)
    later = await load(lake, [renamed(person(n)) for n in range(PEOPLE)])

    assert partial.status == "partial" and partial.schema_changes
    # Still against the accepted shape (the keys are of records each run changed: none later).
    assert [line.split(" (e.g.")[0] for line in later.schema_changes] == [
        line.split(" (e.g.")[0] for line in partial.schema_changes
    ]


async def test_records_written_from_psql_are_shaped_when_the_run_finishes(
    lake: Lake, conn: asyncpg.Connection
) -> None:
    await load(lake, [person(n) for n in range(3)])
    await insert_from_psql(conn, odd_person(9))
    summary = await load(lake, [person(n) for n in range(3)], complete=False)

    assert any(
        line.startswith("/personBasic/birthDate changed type: number in 1 of 4 records")
        and "U00000009" in line
        for line in summary.schema_changes
    )


async def contract(conn, rule: str, path: str, on_break: str, service: str = "") -> None:
    await conn.execute(
        "SELECT lake.set_contract('person', $1, $2, $3, $4)", service, path, rule, on_break
    )


async def test_a_contract_rejects_the_records_that_break_it_with_their_reason(
    lake: Lake, conn: asyncpg.Connection
) -> None:
    await load(lake, [person(n) for n in range(PEOPLE)])
    await contract(conn, "required", "/personBasic/birthDate", "discard_row")
    await contract(conn, "frozen", "", "discard_row", service="studentGPA")

    run = await lake.start_run("person")
    result = await run.load([renamed(person(n)) if n < 3 else person(n) for n in range(PEOPLE)])
    summary = await run.finish(complete=False)

    assert (result.rejected, summary.rejected) == (3, 3)
    reasons = await conn.fetch("SELECT reason, sample FROM lake.rejected ORDER BY sample")
    assert reasons[0]["reason"] == (
        "contract of person: /personBasic/birthDate is required and absent; contract of "
        "studentGPA: /studentInfo/studentSemester[]/studentSemesterInfo/currentGpa is frozen "
        "as number, got string"
    )
    assert "U00000000" in reasons[0]["sample"] and "2001" not in reasons[0]["sample"]
    stored = await conn.fetchval(
        "SELECT person_data #>> '{personBasic,birthDate}' FROM person_xform.current_person_data"
        " WHERE bu_uid = 'U00000000'"
    )
    assert stored == "2001-02-03"  # the version before stays
    assert summary.schema_changes == []  # nothing of the breach was stored


async def test_a_frozen_contract_with_freeze_stops_the_run_and_stores_nothing_of_the_batch(
    lake: Lake, conn: asyncpg.Connection
) -> None:
    await load(lake, [person(n) for n in range(3)])
    await contract(conn, "frozen", "/personBasic", "freeze")
    raw = await conn.fetchval("SELECT count(*) FROM person_raw.person_data")

    run = await lake.start_run("person")
    with pytest.raises(ContractBroken, match=r"/personBasic/dateOfBirth \(string\) is new below"):
        await run.load([person(5), renamed(person(1))])
    await run.fail("contract")
    assert await conn.fetchval("SELECT count(*) FROM person_raw.person_data") == raw


async def test_discard_value_stores_the_record_without_the_value_and_says_how_many(
    lake: Lake, conn: asyncpg.Connection
) -> None:
    await load(lake, [person(n) for n in range(3)])
    await contract(conn, "frozen", "/studentInfo", "discard_value")

    summary = await load(lake, [renamed(person(n)) for n in range(3)])

    assert summary.rejected == 0 and summary.changed == 3
    info = await conn.fetchval(
        "SELECT person_data #> '{studentInfo,studentSemester}' FROM"
        " person_xform.current_person_data WHERE bu_uid = 'U00000001'"
    )
    assert [s["studentSemesterInfo"].get("currentGpa", "gone") for s in orjson.loads(info)] == [
        "gone",
        None,
    ]
    assert (
        "contract of person: /studentInfo/studentSemester[]/studentSemesterInfo/currentGpa is "
        "frozen as number, got string: 3 values discarded" in summary.schema_changes
    )


async def test_contract_rejections_beyond_the_rejection_guard_roll_the_batch_back(
    lake: Lake, conn: asyncpg.Connection
) -> None:
    await load(lake, [person(n) for n in range(PEOPLE)])
    await contract(conn, "required", "/personBasic/birthDate", "discard_row")

    run = await lake.start_run("person")
    run.max_rejected_share = 0.05
    with pytest.raises(RejectionLimit, match="30 of 30 records were rejected"):
        await run.load([renamed(person(n)) for n in range(PEOPLE)])
    await run.fail("guard")
    assert await conn.fetchval("SELECT count(*) FROM lake.rejected") == 0


async def test_a_contract_names_a_real_service_and_a_valid_path(conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.InvalidParameterValueError, match='no service "nobody"'):
        await contract(conn, "frozen", "", "discard_row", service="nobody")
    with pytest.raises(asyncpg.InvalidParameterValueError, match="does not start with"):
        await contract(conn, "required", "personBasic", "discard_row")


async def test_dataload_schema_shows_the_tree_a_service_and_the_history(
    lake: Lake, conn: asyncpg.Connection, run_cli
) -> None:
    await load(lake, [person(n) for n in range(PEOPLE)])
    await load(lake, [renamed(person(n)) for n in range(PEOPLE)])

    tree = await run_cli("schema", "person")
    service = await run_cli("schema", "person", "--service", "bioDemo")
    history = await run_cli("schema", "person", "--history")
    frozen = await run_cli("schema", "person", "--service", "bioDemo", "--freeze", "*")

    assert tree.exit_code == 0, tree.output
    assert "person: shape of run 2 (complete" in tree.output and "30 records" in tree.output
    assert "    dateOfBirth" in tree.output and "string 30" in tree.output
    assert "  email  " in tree.output and "    []  " in tree.output  # arrays, then elements
    assert service.exit_code == 0, service.output
    assert "bioDemo receives from person" in service.output
    lacking = [x for x in service.output.splitlines() if x.startswith("  in no record: ")]
    assert lacking and "/personBasic/birthDate" in lacking[0]  # the test people lack others too
    assert "studentInfo" not in service.output
    lines = history.output.splitlines()
    assert lines[0].startswith("run 1") and lines[1] == "  first shape"
    assert any("service bioDemo affected: /personBasic/birthDate vanished" in x for x in lines)
    assert frozen.exit_code == 0, frozen.output
    assert "contract of person: bioDemo: every path frozen (discard_row)" in frozen.output
    assert "[frozen by bioDemo]" in frozen.output


async def test_dataload_schema_refuses_an_unknown_domain_or_service(run_cli) -> None:
    unknown = await run_cli("schema", "nobody")
    no_service = await run_cli("schema", "person", "--service", "nobody")

    assert unknown.exit_code == 1 and "the lake has no domain 'nobody'" in unknown.output
    assert no_service.exit_code == 1 and "person has no service 'nobody'" in no_service.output
