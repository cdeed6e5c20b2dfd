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

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from dataload.sandbox.calendar import Term
from dataload.sandbox.pools import Pools
from dataload.sandbox.population import Population, Roles, StudentCareer
from dataload.sandbox.rng import Tag, event_days, happens_on, mix, rng_for
from dataload.sandbox.vocabulary import DEPARTMENTS, iso_date

__all__ = ["ALL_OBJECTS", "PersonEvents", "PersonFactory"]

ALL_OBJECTS = frozenset({"student", "affiliate", "faculty", "employee"})

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
        changes = list(event_days(self.change_rate, arrive, day, *key, Tag.PERSON_CHANGE))
        shuffles = sum(
            1 for _ in event_days(self.shuffle_rate, arrive, day, *key, Tag.PERSON_SHUFFLE)
        )
        return PersonEvents(arrive, changes, shuffles)

    def changed_on(self, i: int, day: int) -> bool:
        """Whether a change event rewrote a field of person `i` on `day`."""
        arrive = self.population.arrive_day(i)
        return happens_on(day, self.change_rate, arrive, self.seed, i, Tag.PERSON_CHANGE)

    def shuffled_on(self, i: int, day: int) -> bool:
        """Whether person `i`'s arrays turned by one more place on `day`."""
        arrive = self.population.arrive_day(i)
        return happens_on(day, self.shuffle_rate, arrive, self.seed, i, Tag.PERSON_SHUFFLE)

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
        """The SnapLogic person document of person `i` on `day` (assumed present).

        Every section is drawn whatever `objects` asks for, then the unasked ones dropped,
        so that a section's content never depends on the others being requested.
        """
        population, pools = self.population, self.pools
        roles = population.roles(i)
        rng = rng_for(self.seed, Tag.DOCUMENT, i)
        r = rng.random
        buid = population.buid(i)
        gender = _GENDERS[int(r() * 3)]
        firsts = pools.first_names_female if gender == "F" else pools.first_names_male
        first, middle = firsts[int(r() * len(firsts))], firsts[int(r() * len(firsts))]
        last = pools.last_names[int(r() * len(pools.last_names))]
        login = f"{first[0]}{last}".lower()[:8] + f"{i % 100:02d}"
        senior = roles.primary in ("faculty", "staff")
        birth = iso_date(1950, int(r() * 14600)) if senior else iso_date(1996, int(r() * 3650))
        country, citizenship, visa = _CITIZENSHIP[int(r() * len(_CITIZENSHIP))]
        ethnicity = _ETHNICITIES[int(r() * len(_ETHNICITIES))]
        pronouns = _PRONOUNS[gender]
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
            "birthDate": birth,
            "gender": gender,
            "pronouns": pronouns[int(r() * len(pronouns))],
            "ssn": f"{100 + int(r() * 800):03d}-{10 + int(r() * 89):02d}-{int(r() * 9999):04d}",
            "sexualOrientation": _ORIENTATIONS[int(r() * len(_ORIENTATIONS))],
            "ethnicity": [{"code": ethnicity[0], "description": ethnicity[1]}],
            "citizenship": {"country": country, "status": citizenship, "visaType": visa},
            "deceased": False,
        }
        places = pools.addresses
        addresses = [
            {
                "type": kind,
                **places[int(r() * len(places))],
                "effectiveDate": iso_date(2015, int(r() * 3285)),
            }
            for kind in (("HOME", "MAIL") if r() < 0.7 else ("HOME", "MAIL", "CAMPUS"))
        ]
        domains = pools.email_domains
        emails = [
            {"type": "BU", "address": f"{login}@bu.edu", "primary": True},
            {
                "type": "PERSONAL",
                "address": f"{first}.{last}{int(r() * 100)}@{domains[int(r() * len(domains))]}".lower(),
                "primary": False,
            },
        ]
        if roles.employee and r() < 0.5:
            emails.append({"type": "WORK", "address": f"{login}@bu.edu", "primary": False})
        phones = [
            {"type": kind, "number": _phone(r), "primary": n == 0}
            for n, kind in enumerate(("CELL", "HOME", "WORK")[: 1 + int(r() * 3)])
        ]
        contact = (
            f"{pools.first_names_female[int(r() * len(pools.first_names_female))]} "
            f"{pools.last_names[int(r() * len(pools.last_names))]}"
        )
        person_details = {
            "primaryAffiliation": roles.primary,
            "affiliations": _affiliations(roles),
            "kerberosName": login,
            "address": addresses,
            "emergencyContacts": [
                {
                    "name": contact,
                    "relationship": _RELATIONSHIPS[int(r() * len(_RELATIONSHIPS))],
                    "phone": _phone(r),
                }
            ],
            "maritalStatus": "SMU"[int(r() * 3)],
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
        if roles.employee:
            document["employeeInfo"] = _employee_info(r, pools, roles, population)
        if roles.primary == "faculty":
            document["facultyInfo"] = _faculty_info(r, pools)
        if roles.primary == "affiliate":
            document["affiliateInfo"] = {
                "sponsor": population.buid(int(r() * population.people)),
                "organization": pools.companies[int(r() * len(pools.companies))],
                "expirationDate": iso_date(2026, int(r() * 1095)),
            }
        events = self.events(i, day)
        last_modified = iso_date(2023, int(r() * 730)) if events.arrive == 1 else None
        if roles.student:  # drawn last: its length depends on the day
            careers = population.careers(i)
            terms = population.student_terms(i, careers, self.date_of(day))
            document["studentInfo"] = _student_info(r, pools, careers, terms, population, i)
        for k, change_day in enumerate(events.changes):
            _mutate(document, mix(self.seed, Tag.PERSON_MUTATION, i, k), pools)
            last_modified = self.date_of(change_day).isoformat()
        document["meta"] = {
            "source": "SnapLogic person",
            "lastModified": last_modified or self.date_of(events.arrive).isoformat(),
        }
        if events.shuffles:
            for items in (document["email"], document["phone"], person_details["address"]):
                turn = events.shuffles % len(items) if items else 0
                items[:] = items[turn:] + items[:turn]
        if objects != ALL_OBJECTS:
            for obj, section in _SECTIONS.items():
                if obj not in objects:
                    document.pop(section, None)
        return document


_SECTIONS = {
    "employee": "employeeInfo",
    "faculty": "facultyInfo",
    "affiliate": "affiliateInfo",
    "student": "studentInfo",
}


def _phone(r: Callable[[], float]) -> str:
    area = _AREA_CODES[int(r() * len(_AREA_CODES))]
    return f"{area}-{200 + int(r() * 800)}-{int(r() * 10000):04d}"


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


def _employee_info(
    r: Callable[[], float], pools: Pools, roles: Roles, population: Population
) -> dict:
    code, name, school = DEPARTMENTS[int(r() * len(DEPARTMENTS))]
    titles = pools.job_titles
    jobs = [
        {
            "positionNumber": f"{int(r() * 10**8):08d}",
            "title": titles[int(r() * len(titles))],
            "departmentId": f"{school}-{code}",
            "department": name,
            "fte": 1.0 if r() < 0.8 else 0.5,
            "status": "Active" if n == 0 else "Ended",
            "startDate": iso_date(2005, int(r() * 6935)),
            "salaryGrade": str(40 + int(r() * 60)),
            "supervisorBuid": population.buid(int(r() * population.people)),
        }
        for n in range(1 + int(r() * 3))
    ]
    info = {
        "employeeStatus": roles.emp_status,
        "hireDate": jobs[-1]["startDate"],
        "employeeClass": "Student Employee" if roles.primary == "student" else "Regular",
        "jobs": jobs,
        "benefits": [
            {"plan": plan, "coverage": _COVERAGE[int(r() * 3)]}
            for plan in _BENEFITS[: int(r() * len(_BENEFITS))]
        ],
    }
    if roles.primary == "student":
        info["finAidWorkStudy"] = {"eligible": True, "awardAmount": round(r() * 4000, 2)}
    return info


_COVERAGE = ("Employee", "Family", "Employee + 1")
_TENURE = ("Tenured", "Tenure Track", "Non-Tenure Track")
_OFFICES = ("CAS", "PHO", "CDS", "EMB", "HAR")
_FIN_AID_STATUS = ("Packaged", "Disbursed", "Not Applied")


def _faculty_info(r: Callable[[], float], pools: Pools) -> dict:
    _, name, school = DEPARTMENTS[int(r() * len(DEPARTMENTS))]
    words = pools.words
    return {
        "rank": _RANKS[int(r() * len(_RANKS))],
        "tenureStatus": _TENURE[int(r() * 3)],
        "appointments": [
            {
                "department": name,
                "college": school,
                "percent": 100 if n == 0 else 0,
                "startDate": iso_date(1995, int(r() * 10220)),
            }
            for n in range(1 + int(r() * 2))
        ],
        "researchAreas": [words[int(r() * len(words))] for _ in range(1 + int(r() * 4))],
        "office": {"building": _OFFICES[int(r() * 5)], "room": str(100 + int(r() * 500))},
    }


def _student_info(
    r: Callable[[], float],
    pools: Pools,
    careers: list[StudentCareer],
    terms: list[Term],
    population: Population,
    i: int,
) -> dict:
    calendar = population.calendar
    by_career = {sc.career: sc for sc in careers}
    templates, n_templates = pools.classes, len(pools.classes)
    semesters = []
    cumulative_units, cumulative_points = 0, 0.0
    for n, term in enumerate(terms):
        level = _level(by_career[term.career], term)
        graded = n < len(terms) - 2
        count = 2 + int(r() * 3)
        if graded:
            classes = [
                {**templates[int(r() * n_templates)], "grade": _GRADES[int(r() * 10)]}
                for _ in range(count)
            ]
        else:
            classes = [{**templates[int(r() * n_templates)], "grade": None} for _ in range(count)]
        units = 4 * count
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
                    "finAidStatus": _FIN_AID_STATUS[int(r() * 3)],
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
            {
                "aidYear": aid_year,
                "type": _FIN_AID_TYPES[int(r() * len(_FIN_AID_TYPES))],
                "amount": round(r() * 20000, 2),
            }
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
