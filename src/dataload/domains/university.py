"""The university's domains (term, course, person), declared with the domain API.

Their lake tables come from migrations V0007-V0009 and their flows are their own (flows/term.py,
course.py, person.py), named here by import path so that listing domains does not import
Prefect. The declarations give `dataload domains` and `dataload run` one list of every domain.
"""

from __future__ import annotations

from dataload.domains.spec import DomainSpec, Key, Listing, Schedule

__all__ = ["COURSE", "NEW_YORK", "PERSON", "TERM"]

#: The university's schedules' timezone.
NEW_YORK = "America/New_York"


def _daily_at(hour: str) -> str:
    return f"Daily at {hour} New York time."


TERM = DomainSpec(
    name="term",
    description="Terms from PeopleSoft's BU_TERM_QRY.",
    keys=(Key("acad_career", field="ACAD_CAREER"), Key("strm", field="STRM")),
    listing=Listing.COMPLETE,
    source=None,
    source_label="PeopleSoft BU_TERM_QRY",
    schedules=(
        Schedule("raw-daily", cron="0 1 * * *", timezone=NEW_YORK, description=_daily_at("01:00")),
    ),
    tags=("source:peoplesoft",),
    flow="dataload.flows.term:term_raw_flow",
)

COURSE = DomainSpec(
    name="course",
    description="Courses of the active terms from SnapLogic.",
    keys=(
        Key("academic_career", field="academicCareer"),
        Key("term_code", field="termCode"),
        Key("course_id", "bigint", field="courseId"),
        Key("session_code", field="sessionCode"),
    ),
    listing=Listing.SCOPED,
    source=None,
    source_label="SnapLogic course task, per active term",
    schedules=(
        Schedule("raw-daily", cron="0 2 * * *", timezone=NEW_YORK, description=_daily_at("02:00")),
    ),
    tags=("source:snaplogic",),
    flow="dataload.flows.course:course_raw_flow",
)

PERSON = DomainSpec(
    name="person",
    description="People listed by PeopleSoft, SAP and VDS, documents from SnapLogic.",
    keys=(Key("bu_uid", field="personid"),),
    listing=Listing.COMPLETE,
    source=None,
    source_label="PeopleSoft + SAP + VDS ids; SnapLogic person task",
    never_store=("ssn", "sexualOrientation", "finAid*"),
    schedules=(
        Schedule("raw-daily", cron="0 3 * * *", timezone=NEW_YORK, description=_daily_at("03:00")),
    ),
    tags=("source:peoplesoft", "source:sap", "source:vds", "source:snaplogic"),
    flow="dataload.flows.person:person_raw_flow",
)
