"""Record shaping: PeopleSoft alias prefixes, course flattening, person sanitising."""

from __future__ import annotations

import pytest

from dataload.sources.peoplesoft import normalise_field, normalise_row
from dataload.sources.snaplogic import flatten_courses, is_sensitive_field, strip_sensitive


def test_alias_prefixes_are_removed_and_other_names_kept():
    assert normalise_field("A.STRM") == "STRM"
    assert normalise_field("STRM") == "STRM"
    assert normalise_field("attr:rownumber") == "attr:rownumber"
    assert normalise_row({"attr:rownumber": 1, "A.ACAD_CAREER": "UGRD", "B.STRM": "2268"}) == {
        "attr:rownumber": 1,
        "ACAD_CAREER": "UGRD",
        "STRM": "2268",
    }


def test_sensitive_fields_are_removed_at_any_depth_and_through_lists():
    person = {
        "personid": "U1",
        "ssn": "123-45-6789",
        "personBasic": {"name": "A", "sexualOrientation": "x", "SSN": "1"},
        "studentInfo": {
            "studentSemester": [
                {"term": "2268", "finAidAward": 100, "finAidStatus": {"a": 1}, "gpa": 3.5},
                [{"finAid": 1, "keep": True}],
            ],
            "financialAidOffice": "kept: not a finAid prefix",
        },
        "email": [],
    }
    strip_sensitive(person)
    assert person == {
        "personid": "U1",
        "personBasic": {"name": "A"},
        "studentInfo": {
            "studentSemester": [{"term": "2268", "gpa": 3.5}, [{"keep": True}]],
            "financialAidOffice": "kept: not a finAid prefix",
        },
        "email": [],
    }


@pytest.mark.parametrize(
    "name", ["ssn", "SSN", "sexualOrientation", "finAid", "finAidYear", "FINAIDX"]
)
def test_sensitive_names(name):
    assert is_sensitive_field(name)


@pytest.mark.parametrize("name", ["personid", "ssnNote", "fin", "aidFin", "orientation"])
def test_ordinary_names(name):
    assert not is_sensitive_field(name)


def course_doc(career="UGRD", code="2268", *courses):
    return {
        "termDetails": {"academicCareer": career, "term": {"code": code}},
        "courses": list(courses),
    }


def test_courses_flatten_to_one_record_per_key_with_career_and_term():
    docs = [
        course_doc(
            "UGRD",
            "2268",
            {"v2": {"courseId": 1, "sessionCode": "1", "title": "A"}},
            {"v2": {"courseId": 2, "sessionCode": "1", "title": "B"}},
        ),
        course_doc("GRAD", "2268", {"v2": {"courseId": 1, "sessionCode": "1", "title": "G"}}),
        course_doc("UGRD", "2268", {"v2": {"courseId": 1, "sessionCode": "1", "title": "A2"}}),
        course_doc("UGRD", "2268"),
    ]
    records = flatten_courses(docs)
    assert records == [
        {
            "courseId": 1,
            "sessionCode": "1",
            "title": "A2",
            "academicCareer": "UGRD",
            "termCode": "2268",
        },
        {
            "courseId": 2,
            "sessionCode": "1",
            "title": "B",
            "academicCareer": "UGRD",
            "termCode": "2268",
        },
        {
            "courseId": 1,
            "sessionCode": "1",
            "title": "G",
            "academicCareer": "GRAD",
            "termCode": "2268",
        },
    ]


def test_courses_without_key_fields_pass_through_for_the_lake_to_reject():
    records = flatten_courses([course_doc("UGRD", 2268, {"v2": {"title": "no id"}})])
    assert records == [{"title": "no id", "academicCareer": "UGRD", "termCode": "2268"}]


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ({"courses": []}, "not an array"),
        ([{}], "document 0 without termDetails"),
        ([{"termDetails": {"academicCareer": "UGRD"}, "courses": []}], "termDetails.term.code"),
        ([{"termDetails": {"academicCareer": "UGRD", "term": {"code": "1"}}}], "courses array"),
        ([course_doc("UGRD", "1", {"v1": {}})], "no v2 object"),
        ([course_doc("UGRD", "1"), None], "document 1"),
    ],
)
def test_course_documents_of_another_shape_are_rejected(documents, message):
    with pytest.raises(ValueError, match=message):
        flatten_courses(documents)
