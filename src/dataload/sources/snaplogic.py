"""SnapLogic triggered tasks: courses per term and person documents, API-key auth.

Tasks answer with a JSON array of documents and may take minutes (default read timeout 15 min).
A Cloud-URL task allows about 10 concurrent calls and answers 429 beyond that; the retry policy
honours its Retry-After.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp

from dataload.settings import Settings
from dataload.sources.auth import ApiKeyAuth, ApiKeyScheme
from dataload.sources.documents import DocumentsRead, Unreadable, read_documents
from dataload.sources.http import SourceClient, SourceHttp, require_url, timeouts
from dataload.sources.retry import RetryPolicy

__all__ = [
    "PersonBatch",
    "SnapLogicCourses",
    "SnapLogicPersons",
    "flatten_courses",
    "is_sensitive_field",
    "strip_sensitive",
]

#: Seconds a task may take to answer (the tasks are known to take minutes).
DEFAULT_READ_TIMEOUT = 900.0
#: The person objects requested, in the API's own notation.
PERSON_OBJECTS = "['student','affiliate','faculty','employee']"

_SENSITIVE_NAMES = frozenset({"ssn", "sexualorientation"})
_SENSITIVE_PREFIX = "finaid"
# Person documents reuse a few hundred key names millions of times, so each name is judged once
# and remembered; then one dict is checked with C-speed set operations instead of a Python loop.
_KNOWN_NAMES: set[str] = set()
_SENSITIVE_SEEN: set[str] = set()
_KNOWN_LIMIT = 100_000  # only guards against a source with unbounded key names


def is_sensitive_field(name: str) -> bool:
    """`ssn`, `sexualOrientation` and `finAid*`, compared without regard to case."""
    folded = name.casefold()
    return folded in _SENSITIVE_NAMES or folded.startswith(_SENSITIVE_PREFIX)


def _learn(names: set[str]) -> None:
    # Judged before known: answers are sanitised in worker threads, and a thread that finds a
    # name known must find it among the sensitive ones if it is.
    _SENSITIVE_SEEN.update([name for name in names if is_sensitive_field(name)])
    if len(_KNOWN_NAMES) > _KNOWN_LIMIT:
        _KNOWN_NAMES.clear()
    _KNOWN_NAMES.update(names)


def strip_sensitive(value: Any) -> None:
    """Remove sensitive fields at any depth of a decoded JSON value, in place.

    In place because the documents were just decoded and nothing else holds them: rebuilding
    every dict of millions of documents would cost more than decoding them. The walk keeps its
    own stack: a document of any depth is walked without recursion.
    """
    if type(value) in (dict, list):
        _strip(value)


def _strip(document: dict[str, Any] | list[Any]) -> None:
    stack: list[Any] = [document]
    while stack:
        value = stack.pop()
        if type(value) is dict:
            names = value.keys()
            if not names <= _KNOWN_NAMES:
                _learn(names - _KNOWN_NAMES)
            if not _SENSITIVE_SEEN.isdisjoint(names):
                for name in names & _SENSITIVE_SEEN:
                    del value[name]
            stack.extend([item for item in value.values() if type(item) in _CONTAINERS])
        else:
            stack.extend([item for item in value if type(item) in _CONTAINERS])


_CONTAINERS = (dict, list)


class _SnapLogicTask(SourceClient):
    """A SnapLogic triggered task (`task` names it: course or person) and its API key."""

    task: ClassVar[str]

    def __init__(
        self,
        *,
        url: str,
        key: str,
        cs_env: str,
        auth_scheme: ApiKeyScheme = "x-api-key",
        timeout: aiohttp.ClientTimeout | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 8,
    ) -> None:
        prefix = f"SNAPLOGIC_{self.task.upper()}"
        self.url = require_url(url, f"{prefix}_URL")
        self.cs_env = cs_env
        self._http = SourceHttp(
            source=f"SnapLogic {self.task} API",
            url_variable=f"{prefix}_URL",
            credential_variables=f"{prefix}_KEY",
            concurrency_variable="DATALOAD_SNAPLOGIC_CONCURRENCY",
            auth=ApiKeyAuth(key, scheme=auth_scheme),
            secrets=(key,),
            timeout=timeout or timeouts(read=DEFAULT_READ_TIMEOUT),
            retry=retry or RetryPolicy(),
            max_connections=max_connections,
        )

    @classmethod
    def settings_options(cls, settings: Settings) -> dict[str, Any]:
        return {
            "url": getattr(settings, f"snaplogic_{cls.task}_url"),
            "key": getattr(settings, f"snaplogic_{cls.task}_key").get_secret_value(),
            "cs_env": settings.cs_env,
            "max_connections": settings.snaplogic_concurrency,
            "timeout": timeouts(read=settings.snaplogic_timeout_s),
        }


class SnapLogicCourses(_SnapLogicTask):
    """The course task: `GET {url}?term={STRM}&csEnv={CS_ENV}`, one flat record per course."""

    task = "course"

    async def courses(self, term_code: str) -> list[dict[str, Any]]:
        """Every course of term `term_code`, whatever its career, one record per course key."""
        label = f"SnapLogic course API (term {term_code})"
        body = await self._http.request_json(
            "GET", self.url, source=label, params={"term": term_code, "csEnv": self.cs_env}
        )
        try:
            return flatten_courses(body)
        except ValueError as exc:
            raise self._http.shape_error(self.url, f"answered {exc}", source=label) from None


def flatten_courses(documents: Any) -> list[dict[str, Any]]:
    """`[{"termDetails": .., "courses": [{"v2": {..}}]}]` -> one flat record per course.

    Each record is the course's v2 fields plus `academicCareer` and `termCode` from its
    document's termDetails. A course listed twice under the same key (career, term, courseId,
    sessionCode) comes out once, as last listed. A course missing a key field is passed on as
    it is, for the lake to reject and count. Raises ValueError describing a document that is
    not in this shape.
    """
    if not isinstance(documents, list):
        raise ValueError("JSON that is not an array of documents")
    records: dict[tuple[Any, ...], dict[str, Any]] = {}
    keyless: list[dict[str, Any]] = []
    for index, document in enumerate(documents):
        details = document.get("termDetails") if isinstance(document, dict) else None
        career = details.get("academicCareer") if isinstance(details, dict) else None
        term = details.get("term") if isinstance(details, dict) else None
        code = term.get("code") if isinstance(term, dict) else None
        if not isinstance(career, str) or code is None:
            raise ValueError(
                f"document {index} without termDetails.academicCareer and termDetails.term.code"
            )
        courses = document.get("courses")
        if not isinstance(courses, list):
            raise ValueError(f"document {index} without a courses array")
        term_code = str(code)
        for course in courses:
            v2 = course.get("v2") if isinstance(course, dict) else None
            if not isinstance(v2, dict):
                raise ValueError(f"document {index} with a course that has no v2 object")
            record = {**v2, "academicCareer": career, "termCode": term_code}
            course_id, session = v2.get("courseId"), v2.get("sessionCode")
            if course_id is None or session is None:
                keyless.append(record)
            else:
                records[(career, term_code, course_id, session)] = record
    return [*records.values(), *keyless]


@dataclass(frozen=True)
class PersonBatch:
    """Person documents of one call, sanitised; how many empty documents were dropped; the
    documents that could not be read (NaN, too deep, not an object), named without content."""

    records: list[dict[str, Any]]
    dropped_empty: int
    unreadable: list[Unreadable] = field(default_factory=list)


class SnapLogicPersons(_SnapLogicTask):
    """The person task: POST the uidCarTerm rows of up to 1000 people, get their documents."""

    task = "person"

    async def persons(self, uid_car_term_rows: list[dict[str, Any]]) -> PersonBatch:
        """The documents of the people in `uid_car_term_rows`, without sensitive fields.

        A person without uidCarTerm rows is passed as `{"CAMPUS_ID": buid}`. Documents without
        a `personid` (the task sometimes answers empty objects) are dropped and counted. A
        document that cannot be read is set aside (`unreadable`), the others load: its person
        is not answered, as if left out.
        """
        if not uid_car_term_rows:
            return PersonBatch(records=[], dropped_empty=0)
        body = await self._http.request_json(
            "POST",
            self.url,
            params={"objects": PERSON_OBJECTS, "csEnv": self.cs_env},
            json_body={"uidCarTerm": json.dumps(uid_car_term_rows, separators=(",", ":"))},
            large=True,
            read=read_documents,
        )
        # Sanitising a thousand documents takes a CPU-bound while: off the event loop too.
        return await asyncio.to_thread(self._sanitised, body)

    def _sanitised(self, body: DocumentsRead) -> PersonBatch:
        """The documents of an answer without sensitive fields; empty ones dropped, counted;
        those that are not objects set aside with the unreadable."""
        if not isinstance(body.documents, list):
            raise self._http.shape_error(self.url, "answered JSON that is not an array")
        records = []
        dropped = 0
        unreadable = list(body.unreadable)
        for position, document in enumerate(body.documents):
            if document is None or (type(document) is dict and not document.get("personid")):
                dropped += 1
            elif type(document) is dict:
                _strip(document)
                records.append(document)
            else:
                reason = f"a {type(document).__name__} where a person document belongs"
                unreadable.append(Unreadable(position, None, reason))
        return PersonBatch(records=records, dropped_empty=dropped, unreadable=unreadable)
