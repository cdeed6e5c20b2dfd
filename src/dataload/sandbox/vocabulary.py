"""Fixed word lists shared by people and courses."""

from __future__ import annotations

__all__ = ["DEPARTMENTS"]

# (subject code, department name, school)
DEPARTMENTS = (
    ("CS", "Computer Science", "CAS"),
    ("MA", "Mathematics & Statistics", "CAS"),
    ("PY", "Physics", "CAS"),
    ("CH", "Chemistry", "CAS"),
    ("BI", "Biology", "CAS"),
    ("EC", "Economics", "CAS"),
    ("HI", "History", "CAS"),
    ("EN", "English", "CAS"),
    ("EK", "Engineering Core", "ENG"),
    ("ME", "Mechanical Engineering", "ENG"),
    ("FE", "Finance", "QST"),
    ("MK", "Marketing", "QST"),
    ("CO", "Communication", "COM"),
    ("HS", "Health Sciences", "SAR"),
    ("DS", "Data Science", "CDS"),
)
