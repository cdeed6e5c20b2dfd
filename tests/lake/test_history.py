"""History: every version of a key with its validity, and what changed between versions."""

from __future__ import annotations

from dataload.lake import Lake
from dataload.lake.history import diff, record_history

from .people import person, shuffled


async def three_versions_and_a_deletion(lake: Lake) -> None:
    for gpa in (3.0, 3.0, 3.3):  # the second load is unchanged: no version
        run = await lake.start_run("person")
        await run.load([shuffled(person(1, gpa=gpa)) if gpa == 3.0 else person(1, gpa=gpa)])
        await run.finish(complete=True)
    run = await lake.start_run("person")
    await run.finish(complete=True, allow_mass_delete=True)  # an empty snapshot: they left


async def test_the_history_view_gives_each_version_its_validity(lake: Lake, conn):
    await three_versions_and_a_deletion(lake)

    rows = await conn.fetch(
        "SELECT deleted, valid_from, valid_to FROM person_raw.person_history"
        " WHERE bu_uid = 'U00000001' ORDER BY raw_id"
    )

    assert [r["deleted"] for r in rows] == [False, False, True]
    assert rows[0]["valid_to"] == rows[1]["valid_from"]
    assert rows[1]["valid_to"] == rows[2]["valid_from"]
    assert rows[2]["valid_to"] is None


async def test_record_history_and_diff_say_what_changed(lake: Lake, conn):
    await three_versions_and_a_deletion(lake)

    versions = await record_history(conn, "person", ["U00000001"])

    assert [v.deleted for v in versions] == [False, False, True]
    changes = list(diff(versions[0].data, versions[1].data))
    # Shuffled arrays in the first version are not changes; the GPA is.
    assert changes == [
        "~ /studentInfo/studentSemester[0]/studentSemesterInfo/currentGpa: 3.0 -> 3.3"
    ]


def test_diff_compares_objects_by_key_and_arrays_as_multisets():
    old = {"a": 1, "b": {"c": [1, 2, 3]}, "gone": True}
    new = {"a": 2, "b": {"c": [3, 1, 4]}, "new": None}
    assert list(diff(old, new)) == [
        "~ /a: 1 -> 2",
        "- /b/c[]: 2",
        "+ /b/c[]: 4",
        "- /gone: true",
        "+ /new: null",
    ]


def test_diff_shows_a_changed_array_element_as_one_change():
    old = {"phone": [{"type": "CELL", "number": "1"}, {"type": "HOME", "number": "2"}]}
    new = {"phone": [{"type": "HOME", "number": "2"}, {"type": "CELL", "number": "3"}]}
    assert list(diff(old, new)) == ['~ /phone[1]/number: "1" -> "3"']


async def test_the_history_command_prints_versions_and_changes(lake: Lake, run_cli):
    await three_versions_and_a_deletion(lake)

    result = await run_cli("history", "person", "U00000001")

    assert result.exit_code == 0, result.output
    assert "version 1: live" in result.output
    assert "version 3: deleted" in result.output
    assert "~ /studentInfo/studentSemester[0]/studentSemesterInfo/currentGpa: 3.0 -> 3.3" in (
        result.output
    )


async def test_the_history_command_says_when_a_key_is_unknown(run_cli):
    result = await run_cli("history", "person", "U99999999")

    assert result.exit_code == 1
    assert "no person record with key U99999999" in result.output
