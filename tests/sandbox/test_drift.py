"""The sandbox's schema drift: a field renamed or retyped from a given day on."""

from __future__ import annotations

import pytest

from dataload.sandbox.drift import DEMO_DRIFTS, Drift, apply_drifts


def document() -> dict:
    return {
        "personid": "U1",
        "personBasic": {"birthDate": "2001-02-03", "gender": "X"},
        "studentInfo": {
            "studentSemester": [
                {"studentSemesterInfo": {"currentGpa": 3.5}},
                {"studentSemesterInfo": {"currentGpa": None}},
            ]
        },
    }


def test_a_drift_applies_from_its_day_on_through_arrays() -> None:
    before, after = document(), document()
    apply_drifts(before, DEMO_DRIFTS, day=1)
    apply_drifts(after, DEMO_DRIFTS, day=2)

    assert before == document()
    assert after["personBasic"] == {"dateOfBirth": "2001-02-03", "gender": "X"}
    gpas = [s["studentSemesterInfo"]["currentGpa"] for s in after["studentInfo"]["studentSemester"]]
    assert gpas == ["3.5", None]


def test_drift_specs_parse_and_bad_ones_say_what_is_expected() -> None:
    assert Drift.parse("/personBasic/birthDate=dateOfBirth@2") == Drift(
        "/personBasic/birthDate", 2, rename="dateOfBirth"
    )
    assert Drift.parse("/a/b:number@3").to_type == "number"
    with pytest.raises(ValueError, match="PATH=NEWNAME@DAY"):
        Drift.parse("personBasic.birthDate=dateOfBirth")
