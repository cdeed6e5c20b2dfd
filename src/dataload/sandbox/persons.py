"""Person documents (SnapLogic person) and career/term rows (BU_TERM_STD_FULL_TERM).

A document is a pure function of (seed, person, day):
- the base content comes from a generator private to the person;
- change events (geometric, `person_change` per day) each rewrite one nested field and
  `meta.lastModified`, applied in order;
- shuffle events (`person_shuffle` per day) rotate `email`, `phone` and `personDetails.address`
  by one more place: same content, another order (every person has two or more emails, so a
  shuffle always shows);
- a student's `studentInfo.studentSemester` grows when the next term starts.
Student semesters are drawn last from the person's generator, in term order, so adding a term
never disturbs anything drawn before it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from dataload.sandbox.calendar import Term
from dataload.sandbox.pools import Pools
from dataload.sandbox.population import Population, Roles, StudentCareer
from dataload.sandbox.rng import event_days, happens_on, mix, rng_for
from dataload.sandbox.vocabulary import DEPARTMENTS

__all__ = ["ALL_OBJECTS", "PersonEvents", "PersonFactory"]

ALL_OBJECTS = frozenset({"student", "affiliate", "faculty", "employee"})
TAG_DOC, TAG_CHANGE, TAG_SHUFFLE, TAG_MUTATION = range(20, 24)

_GENDERS = ("F", "M", "X")
_PRONOUNS = {"F": ("she/her", "they/them"), "M": ("he/him", "they/them"), "X": ("they/them",)}
_ORIENTATIONS = ("Heterosexual", "Gay", "Lesbian", "Bisexual", "Queer", "Declined")
_ETHNICITIES = (
    ("WHITE", "White"),
    ("BLACK", "Black or African American"),
    ("ASIAN", "Asian"),
    ("HISPA", "Hispanic or Latino"),
    ("AMIND", "American Indian or Alaska Native"),
    ("PACIF", "Native Hawaiian or Other Pacific Islander"),
)
_CITIZENSHIP = (
    ("USA", "Citizen", None),
    ("USA", "Citizen", None),
    ("USA", "Citizen", None),
    ("USA", "Permanent Resident", None),
    ("CHN", "Non-Resident Alien", "F1"),
    ("IND", "Non-Resident Alien", "F1"),
    ("KOR", "Non-Resident Alien", "F1"),
    ("CAN", "Non-Resident Alien", "TN"),
)
_RELATIONSHIPS = ("Parent", "Spouse", "Sibling", "Friend", "Guardian")
_AREA_CODES = ("617", "857", "781", "508", "978", "212", "415", "312", "202", "646")
_RANKS = ("Assistant Professor", "Associate Professor", "Professor", "Lecturer", "Senior Lecturer")
_GRADES = ("A", "A-", "B+", "B", "B-", "C+", "C", "A", "A-", "B+")
_UGRD_LEVELS = (("10", "Freshman"), ("20", "Sophomore"), ("30", "Junior"), ("40", "Senior"))
_FIN_AID_TYPES = ("Grant", "Scholarship", "Loan", "Work-Study")
_BENEFITS = ("Medical", "Dental", "Vision", "Retirement 403(b)", "Life Insurance")
_BASE_DATE = date(2020, 1, 1)


@dataclass(frozen=True, slots=True)
class PersonEvents:
    """What happened to one person's content by a day."""

    arrive: int
    changes: list[int]  # days of change events, in order
    shuffles: int  # number of shuffle events so far


class PersonFactory:
    def __init__(
        self,
        population: Population,
        pools: Pools,
        change_rate: float,
        shuffle_rate: float,
        first_day: date,
    ) -> None:
        self.population = population
        self.pools = pools
        self.change_rate = change_rate
        self.shuffle_rate = shuffle_rate
        self.first_day = first_day
        self.seed = population.seed

    def date_of(self, day: int) -> date:
        return self.first_day + timedelta(days=day - 1)

    def events(self, i: int, day: int) -> PersonEvents:
        arrive = self.population.arrive_day(i)
        key = (self.seed, i)
        changes = list(event_days(self.change_rate, arrive, day, *key, TAG_CHANGE))
        shuffles = sum(1 for _ in event_days(self.shuffle_rate, arrive, day, *key, TAG_SHUFFLE))
        return PersonEvents(arrive, changes, shuffles)

    def changed_on(self, i: int, day: int) -> bool:
        """Whether a change event rewrote a field of person `i` on `day`."""
        arrive = self.population.arrive_day(i)
        return happens_on(day, self.change_rate, arrive, self.seed, i, TAG_CHANGE)

    def shuffled_on(self, i: int, day: int) -> bool:
        """Whether person `i`'s arrays turned by one more place on `day`."""
        arrive = self.population.arrive_day(i)
        return happens_on(day, self.shuffle_rate, arrive, self.seed, i, TAG_SHUFFLE)

    def uid_car_term(self, i: int, day: int) -> list[dict[str, object]]:
        """BU_TERM_STD_FULL_TERM rows for person `i` (none unless a present student)."""
        population = self.population
        if not population.roles(i).student or not population.present(i, day):
            return []
        careers = population.careers(i)
        buid, emplid = population.buid(i), population.emplid(i)
        programs = {sc.career: sc for sc in careers}
        return [
            {
                "CAMPUS_ID": buid,
                "EMPLID": emplid,
                "INSTITUTION": "BU001",
                "ACAD_CAREER": term.career,
                "STRM": term.strm,
                "ACAD_PROG": programs[term.career].program,
                "ACAD_LEVEL_BOT": _level(programs[term.career], term)[0],
            }
            for term in population.student_terms(i, careers, self.date_of(day))
        ]

    def document(self, i: int, day: int, objects: frozenset[str] = ALL_OBJECTS) -> dict:
        """The SnapLogic person document of person `i` on `day` (assumed present)."""
        population, pools = self.population, self.pools
        roles = population.roles(i)
        rng = rng_for(self.seed, TAG_DOC, i)
        r = rng.random

        def pick(seq):
            return seq[int(r() * len(seq))]

        buid = population.buid(i)
        gender = pick(_GENDERS)
        firsts = pools.first_names_female if gender == "F" else pools.first_names_male
        first, middle, last = pick(firsts), pick(firsts), pick(pools.last_names)
        login = f"{first[0]}{last}".lower()[:8] + f"{i % 100:02d}"
        birth = date(1950 if roles.primary in ("faculty", "staff") else 1996, 1, 1) + timedelta(
            days=int(r() * 365 * (40 if roles.primary in ("faculty", "staff") else 10))
        )
        country, citizenship, visa = pick(_CITIZENSHIP)
        ethnicity = pick(_ETHNICITIES)
        person_basic = {
            "buid": buid,
            "emplid": population.emplid(i),
            "name": {
                "prefix": None,
                "first": first,
                "middle": middle,
                "last": last,
                "suffix": "Jr." if r() < 0.03 else None,
                "display": f"{first} {last}",
            },
            "preferredName": {"first": first if r() < 0.8 else middle, "last": last},
            "birthDate": birth.isoformat(),
            "gender": gender,
            "pronouns": pick(_PRONOUNS[gender]),
            "ssn": f"{100 + int(r() * 800):03d}-{10 + int(r() * 89):02d}-{int(r() * 9999):04d}",
            "sexualOrientation": pick(_ORIENTATIONS),
            "ethnicity": [{"code": ethnicity[0], "description": ethnicity[1]}],
            "citizenship": {"country": country, "status": citizenship, "visaType": visa},
            "deceased": False,
        }
        addresses = []
        for kind in ("HOME", "MAIL") if r() < 0.7 else ("HOME", "MAIL", "CAMPUS"):
            city, state, zip_code = pick(pools.places)
            addresses.append(
                {
                    "type": kind,
                    "street1": pick(pools.streets),
                    "street2": pick(pools.secondary) if r() < 0.3 else None,
                    "city": city,
                    "state": state,
                    "postalCode": zip_code,
                    "country": "USA",
                    "effectiveDate": _some_date(r, 2015, 9).isoformat(),
                }
            )
        emails = [
            {"type": "BU", "address": f"{login}@bu.edu", "primary": True},
            {
                "type": "PERSONAL",
                "address": f"{first}.{last}{int(r() * 100)}@{pick(pools.email_domains)}".lower(),
                "primary": False,
            },
        ]
        if roles.employee and r() < 0.5:
            emails.append({"type": "WORK", "address": f"{login}@bu.edu", "primary": False})
        phones = [
            {"type": kind, "number": _phone(r), "primary": n == 0}
            for n, kind in enumerate(("CELL", "HOME", "WORK")[: 1 + int(r() * 3)])
        ]
        contact_first, contact_last = pick(pools.first_names_female), pick(pools.last_names)
        person_details = {
            "primaryAffiliation": roles.primary,
            "affiliations": _affiliations(roles),
            "kerberosName": login,
            "address": addresses,
            "emergencyContacts": [
                {
                    "name": f"{contact_first} {contact_last}",
                    "relationship": pick(_RELATIONSHIPS),
                    "phone": _phone(r),
                }
            ],
            "maritalStatus": pick(("S", "M", "U")),
            "veteranStatus": "Not a Veteran" if r() < 0.95 else "Protected Veteran",
            "ferpaRestricted": r() < 0.03,
            "directoryListing": {"showEmail": r() < 0.8, "showPhone": r() < 0.4},
        }
        document: dict = {
            "personid": buid,
            "personBasic": person_basic,
            "personDetails": person_details,
            "email": emails,
            "phone": phones,
        }
        if roles.employee and "employee" in objects:
            document["employeeInfo"] = _employee_info(r, pick, pools, roles, population, i)
        if roles.primary == "faculty" and "faculty" in objects:
            document["facultyInfo"] = _faculty_info(r, pick, pools)
        if roles.primary == "affiliate" and "affiliate" in objects:
            document["affiliateInfo"] = {
                "sponsor": population.buid(int(r() * population.people)),
                "organization": pick(pools.companies),
                "expirationDate": _some_date(r, 2026, 3).isoformat(),
            }
        if roles.student and "student" in objects:
            careers = population.careers(i)
            terms = population.student_terms(i, careers, self.date_of(day))
            document["studentInfo"] = _student_info(rng, pick, careers, terms, population, i)
        events = self.events(i, day)
        last_modified = _some_date(r, 2023, 2) if events.arrive == 1 else None
        for k, change_day in enumerate(events.changes):
            _mutate(document, mix(self.seed, TAG_MUTATION, i, k), pools)
            last_modified = self.date_of(change_day)
        document["meta"] = {
            "source": "SnapLogic person",
            "lastModified": (last_modified or self.date_of(events.arrive)).isoformat(),
        }
        if events.shuffles:
            for items in (document["email"], document["phone"], person_details["address"]):
                turn = events.shuffles % len(items) if items else 0
                items[:] = items[turn:] + items[:turn]
        return document


def _phone(r: Callable[[], float]) -> str:
    area = _AREA_CODES[int(r() * len(_AREA_CODES))]
    return f"{area}-{200 + int(r() * 800)}-{int(r() * 10000):04d}"


def _some_date(r: Callable[[], float], year: int, years: int) -> date:
    return date(year, 1, 1) + timedelta(days=int(r() * 365 * years))


def _affiliations(roles: Roles) -> list[str]:
    found = [roles.primary]
    if roles.student and roles.primary != "student":
        found.append("student")
    if roles.employee and roles.primary not in ("faculty", "staff"):
        found.append("employee")
    return found


def _level(career: StudentCareer, term: Term) -> tuple[str, str]:
    years = max((term.index - career.admit) // 4, 0)
    if career.career == "GRAD":
        return "GR", "Graduate"
    if career.career == "LAW":
        return f"L{min(years, 2) + 1}", f"Law Year {min(years, 2) + 1}"
    return _UGRD_LEVELS[min(years, 3)]


def _employee_info(r, pick, pools: Pools, roles: Roles, population: Population, i: int) -> dict:
    department = pick(DEPARTMENTS)
    jobs = []
    for n in range(1 + int(r() * 3)):
        jobs.append(
            {
                "positionNumber": f"{int(r() * 10**8):08d}",
                "title": pick(pools.job_titles),
                "departmentId": f"{department[2]}-{department[0]}",
                "department": department[1],
                "fte": 1.0 if r() < 0.8 else 0.5,
                "status": "Active" if n == 0 else "Ended",
                "startDate": _some_date(r, 2005, 19).isoformat(),
                "salaryGrade": f"{int(r() * 60) + 40}",
                "supervisorBuid": population.buid(int(r() * population.people)),
            }
        )
    info = {
        "employeeStatus": roles.emp_status,
        "hireDate": jobs[-1]["startDate"],
        "employeeClass": "Student Employee" if roles.primary == "student" else "Regular",
        "jobs": jobs,
        "benefits": [
            {"plan": plan, "coverage": pick(("Employee", "Family", "Employee + 1"))}
            for plan in _BENEFITS[: int(r() * len(_BENEFITS))]
        ],
    }
    if roles.primary == "student":
        info["finAidWorkStudy"] = {"eligible": True, "awardAmount": round(r() * 4000, 2)}
    return info


def _faculty_info(r, pick, pools: Pools) -> dict:
    department = pick(DEPARTMENTS)
    return {
        "rank": pick(_RANKS),
        "tenureStatus": pick(("Tenured", "Tenure Track", "Non-Tenure Track")),
        "appointments": [
            {
                "department": department[1],
                "college": department[2],
                "percent": 100 if n == 0 else 0,
                "startDate": _some_date(r, 1995, 28).isoformat(),
            }
            for n in range(1 + int(r() * 2))
        ],
        "researchAreas": [pick(pools.words) for _ in range(1 + int(r() * 4))],
        "office": {
            "building": pick(("CAS", "PHO", "CDS", "EMB", "HAR")),
            "room": str(100 + int(r() * 500)),
        },
    }


def _student_info(
    rng: random.Random,
    pick,
    careers: list[StudentCareer],
    terms: list[Term],
    population: Population,
    i: int,
) -> dict:
    r = rng.random
    calendar = population.calendar
    by_career = {sc.career: sc for sc in careers}
    semesters = []
    cumulative_units, cumulative_points = 0, 0.0
    for n, term in enumerate(terms):
        career = by_career[term.career]
        level = _level(career, term)
        graded = n < len(terms) - 2
        classes = []
        for _ in range(2 + int(r() * 3)):
            department = pick(DEPARTMENTS)
            classes.append(
                {
                    "courseId": 100000 + int(r() * 800000),
                    "sessionCode": "1",
                    "subject": f"{department[2]} {department[0]}",
                    "catalogNumber": str(100 + int(r() * 700)),
                    "units": 4,
                    "grade": pick(_GRADES) if graded else None,
                }
            )
        units = 4 * len(classes)
        gpa = round(2.3 + r() * 1.7, 2)
        if graded:
            cumulative_units += units
            cumulative_points += gpa * units
        semesters.append(
            {
                "termCode": term.strm,
                "termDescription": term.descr,
                "academicCareer": term.career,
                "studentSemesterInfo": {
                    "academicLevel": level[1],
                    "enrollmentStatus": "Full-Time" if units >= 12 else "Part-Time",
                    "unitsEnrolled": units,
                    "currentGpa": gpa if graded else None,
                    "cumulativeGpa": round(cumulative_points / cumulative_units, 2)
                    if cumulative_units
                    else None,
                    "academicStanding": "Good Standing" if gpa >= 2.5 else "Academic Warning",
                    "finAidStatus": pick(("Packaged", "Disbursed", "Not Applied")),
                },
                "classes": classes,
            }
        )
    aid_year = str(terms[-1].year) if terms else None
    return {
        "studentCareer": [
            {
                "academicCareer": sc.career,
                "academicProgram": sc.program,
                "admitTerm": calendar.terms(sc.career)[sc.admit].strm,
                "expectedGraduationTerm": calendar.terms(sc.career)[sc.last].strm,
                "status": "Active",
            }
            for sc in careers
        ],
        "studentSemester": semesters,
        "advisors": [
            {"buid": population.buid((i * 7 + 3) % population.people), "role": "Academic Advisor"}
        ],
        "finAidAwards": [
            {"aidYear": aid_year, "type": pick(_FIN_AID_TYPES), "amount": round(r() * 20000, 2)}
            for _ in range(int(r() * 3))
        ],
    }


def _mutate(document: dict, h: int, pools: Pools) -> None:
    """Rewrite one nested field, chosen and valued by the hash `h`."""
    details = document["personDetails"]
    choice = h % 6
    h //= 6
    if choice == 0:
        document["phone"][0]["number"] = f"617-{200 + h % 800}-{(h // 800) % 10000:04d}"
    elif choice == 1:
        details["address"][0]["street1"] = pools.streets[h % len(pools.streets)]
    elif choice == 2:
        email = document["email"][1]
        email["address"] = f"{email['address'].split('@')[0]}.{h % 1000}@bu-alumni.org"
    elif choice == 3:
        details["emergencyContacts"][0]["phone"] = f"781-{200 + h % 800}-{(h // 800) % 10000:04d}"
    elif choice == 4 and "employeeInfo" in document:
        document["employeeInfo"]["jobs"][0]["title"] = pools.job_titles[h % len(pools.job_titles)]
    elif choice == 5 and document.get("studentInfo", {}).get("studentSemester"):
        info = document["studentInfo"]["studentSemester"][-1]["studentSemesterInfo"]
        info["unitsEnrolled"] = 4 * (2 + h % 4)
    else:
        details["directoryListing"]["showPhone"] = not details["directoryListing"]["showPhone"]
