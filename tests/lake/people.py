"""Small person documents shaped like SnapLogic's (DESIGN.md section 3), for lake tests."""

from __future__ import annotations

import copy
from typing import Any


def person(n: int, *, gpa: float = 3.5, student: bool = True) -> dict[str, Any]:
    buid = f"U{n:08d}"
    doc: dict[str, Any] = {
        "personid": buid,
        "personBasic": {
            "name": {"first": f"First{n}", "last": f"Last{n}", "middle": None},
            "birthDate": "2001-02-03",
            "gender": "X",
        },
        "personDetails": {
            "address": [
                {"type": "HOME", "city": "Boston", "postalCode": "02215"},
                {"type": "MAIL", "city": "Brookline", "postalCode": "02446"},
            ],
            "emergencyContacts": [{"name": "Pat Doe", "phone": "617-555-0100"}],
        },
        "email": [
            {"type": "BU", "address": f"p{n}@bu.edu", "primary": True},
            {"type": "PERSONAL", "address": f"p{n}@example.com", "primary": False},
        ],
        "phone": [{"type": "CELL", "number": "617-555-0101"}],
    }
    if student:
        doc["studentInfo"] = {
            "studentSemester": [
                {
                    "termCode": "2261",
                    "studentSemesterInfo": {"currentGpa": gpa, "academicLevel": "Junior"},
                    "classes": [{"courseId": 100001, "grade": "A"}],
                },
                {
                    "termCode": "2268",
                    "studentSemesterInfo": {"currentGpa": None, "academicLevel": "Senior"},
                    "classes": [{"courseId": 100002, "grade": None}],
                },
            ],
            "advisors": [{"buid": "U00000001", "role": "Academic Advisor"}],
        }
    return doc


def shuffled(doc: dict[str, Any]) -> dict[str, Any]:
    """The same content with every array reversed and object keys in reverse order."""

    def turn(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: turn(value[k]) for k in reversed(list(value))}
        if isinstance(value, list):
            return [turn(v) for v in reversed(value)]
        return value

    return turn(copy.deepcopy(doc))
