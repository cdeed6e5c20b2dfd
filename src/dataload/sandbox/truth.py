"""The truth of a day, for tests: who each source lists, active terms, what changed since the
day before. Computed from the same functions the endpoints use, never from their output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from dataload.sandbox.calendar import CAREERS
from dataload.sandbox.config import SandboxConfig
from dataload.sandbox.university import University, university_for

__all__ = ["PersonTruth", "course_truth", "person_truth", "term_truth"]


@dataclass
class PersonTruth:
    """Person IDs (BUIDs) of a day, per source, and their changes since the day before.

    `changed`: present both days with different content; `shuffled`: present both days, same
    content, arrays in another order; `arrived`/`left`: present on one day only. On day 1 the
    four change lists are empty (there is no day before).
    """

    day: int
    date: str
    persons: list[str] = field(default_factory=list)  # everyone SnapLogic person knows today
    students: list[str] = field(default_factory=list)  # BU_PARM_0216_QRY
    employees_active: list[str] = field(default_factory=list)  # SAP "3 - Active"
    employees_inactive: list[str] = field(default_factory=list)  # SAP, other statuses
    faculty: list[str] = field(default_factory=list)  # VDS PersonPrimaryAffiliation=faculty
    staff: list[str] = field(default_factory=list)  # VDS PersonPrimaryAffiliation=staff
    flow_ids: list[str] = field(default_factory=list)  # students | active | faculty | staff
    changed: list[str] = field(default_factory=list)
    shuffled: list[str] = field(default_factory=list)
    arrived: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def person_truth(config: SandboxConfig, day: int | None = None) -> PersonTruth:
    day = config.day if day is None else day
    university = university_for(config)
    population, persons = university.population, university.persons
    truth = PersonTruth(day, university.date_of(day).isoformat())
    moved = _careers_whose_term_moved(university, day)
    for i in range(population.universe(day)):
        today = population.present(i, day)
        before = day > 1 and population.present(i, day - 1)
        if not (today or before):
            continue
        buid = population.buid(i)
        if not today:
            truth.left.append(buid)
            continue
        roles = population.roles(i)
        truth.persons.append(buid)
        listed = False
        if roles.student:
            truth.students.append(buid)
            listed = True
        if roles.employee:
            (truth.employees_active if roles.active_employee else truth.employees_inactive).append(
                buid
            )
            listed |= roles.active_employee
        if roles.primary in ("faculty", "staff"):
            getattr(truth, roles.primary).append(buid)
            listed = True
        if listed:
            truth.flow_ids.append(buid)
        if day == 1:
            continue
        if not before:
            truth.arrived.append(buid)
        elif persons.changed_on(i, day) or _semesters_moved(university, i, day, moved):
            truth.changed.append(buid)
        elif persons.shuffled_on(i, day):
            truth.shuffled.append(buid)
    return truth


def _careers_whose_term_moved(university: University, day: int) -> set[str]:
    if day <= 1:
        return set()
    today, before = university.date_of(day), university.date_of(day - 1)
    calendar = university.calendar
    return {
        career
        for career in CAREERS
        if calendar.current_index(career, today) != calendar.current_index(career, before)
    }


def _semesters_moved(university: University, i: int, day: int, moved: set[str]) -> bool:
    """Whether a student's semesters differ from the day before (a term boundary was crossed)."""
    population = university.population
    if not moved or not population.roles(i).student:
        return False
    careers = population.careers(i)
    if not moved & {sc.career for sc in careers}:
        return False
    return population.student_terms(i, careers, university.date_of(day)) != (
        population.student_terms(i, careers, university.date_of(day - 1))
    )


def term_truth(config: SandboxConfig, day: int | None = None) -> dict[str, object]:
    """BU_TERM_QRY rows (without aliases), current term per career, active UGRD terms, and
    the (career, STRM) keys since the day before: `arrived`, `changed` (fields other than the
    row number), `renumbered` (only `attr:rownumber` moved, because a term was inserted before)."""
    day = config.day if day is None else day
    university = university_for(config)
    rows = university.term_rows(day)
    result: dict[str, object] = {
        "day": day,
        "date": university.date_of(day).isoformat(),
        "rows": rows,
        "current": {str(r["ACAD_CAREER"]): r["STRM"] for r in rows if r["CURRENT_IND"] == "Y"},
        "active_ugrd_terms": university.active_ugrd_terms(day),
        "arrived": [],
        "changed": [],
        "renumbered": [],
    }
    if day > 1:
        before = {_term_key(r): r for r in university.term_rows(day - 1)}
        for row in rows:
            key, old = _term_key(row), before.get(_term_key(row))
            if old is None:
                result["arrived"].append(list(key))  # type: ignore[union-attr]
            elif _without_number(old) != _without_number(row):
                result["changed"].append(list(key))  # type: ignore[union-attr]
            elif old != row:
                result["renumbered"].append(list(key))  # type: ignore[union-attr]
    return result


def _term_key(row: dict[str, object]) -> tuple[str, str]:
    return str(row["ACAD_CAREER"]), str(row["STRM"])


def _without_number(row: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in row.items() if k != "attr:rownumber"}


def course_truth(
    config: SandboxConfig, day: int | None = None, terms: list[str] | None = None
) -> dict[str, object]:
    """Course row keys [career, STRM, courseId, sessionCode] served for `terms` (default: the
    active UGRD terms) and which of them changed, arrived or left since the day before."""
    day = config.day if day is None else day
    university = university_for(config)
    codes = university.active_ugrd_terms(day) if terms is None else terms
    merged: dict[str, list[list[object]]] = {
        "courses": [],
        "changed": [],
        "arrived": [],
        "left": [],
    }
    for strm in codes:
        for term in university.terms_with_code(strm, day):
            for name, keys in university.courses.changes(term, day).items():
                merged[name].extend(list(key) for key in keys)
    return {"day": day, "terms": codes, **merged}
