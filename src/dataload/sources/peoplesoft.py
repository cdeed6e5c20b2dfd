"""PeopleSoft Campus Solutions Query Access Service (REST), HTTP Basic auth.

`GET {PEOPLE_SOFT_URL}/PSIGW/RESTListeningConnector/PSFT_CS/ExecuteQuery.v1/PUBLIC/{QUERY}/JSON/
NONFILE?isconnectedquery=N&maxrows=0&json_resp=true[&prompt_uniquepromptname=..&prompt_fieldvalue=..]`
answers `{"status": "success", "data": {"query": {"numrows": N, "queryname": "Q", "rows": [...]}}}`.
Field names may carry a record alias (`A.STRM`); rows come out with it removed (`STRM`).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple
from urllib.parse import quote

import aiohttp

from dataload.settings import Settings
from dataload.sources.auth import BasicAuth
from dataload.sources.errors import SourceResponseError
from dataload.sources.http import SourceClient, SourceHttp, require_url, timeouts
from dataload.sources.redaction import endpoint
from dataload.sources.retry import RetryPolicy

__all__ = ["PeopleSoft", "normalise_field", "normalise_row"]

_QUERY_PATH = "/PSIGW/RESTListeningConnector/PSFT_CS/ExecuteQuery.v1/PUBLIC/{query}/JSON/NONFILE"
_FIXED_PARAMS = "isconnectedquery=N&maxrows=0&json_resp=true"
_QUERY_NAME = re.compile(r"[A-Za-z0-9_]+")

TERMS_QUERY = "BU_TERM_QRY"
STUDENTS_QUERY = "BU_PARM_0216_QRY"
UID_CAR_TERM_QUERY = "BU_TERM_STD_FULL_TERM"
#: Seconds a query may take to answer.
DEFAULT_READ_TIMEOUT = 120.0

# Field name -> name without its record alias. Queries have a few dozen distinct field names,
# and every row of every call repeats them, so the answer is computed once per name.
_FIELD_NAMES: dict[str, str] = {}
_FIELD_CACHE_LIMIT = 10_000


def normalise_field(name: str) -> str:
    """`A.STRM` -> `STRM`; names without an alias (`STRM`, `attr:rownumber`) are unchanged."""
    try:
        return _FIELD_NAMES[name]
    except KeyError:
        normal = name.rpartition(".")[2] or name
        if len(_FIELD_NAMES) < _FIELD_CACHE_LIMIT:
            _FIELD_NAMES[name] = normal
        return normal


def normalise_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row with alias prefixes removed from its field names."""
    return {normalise_field(name): value for name, value in row.items()}


class _StudentRow(NamedTuple):
    """A row of the student list reduced, while it is decoded, to its CAMPUS_ID: a large
    university's list never exists as a hundred thousand dicts at once."""

    campus_id: Any

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Any:
        """The row, reduced; any other object (the envelope, a row without CAMPUS_ID) as it is."""
        for name, value in obj.items():
            if normalise_field(name) == "CAMPUS_ID":
                return cls(value)
        return obj


class PeopleSoft(SourceClient):
    """Runs PeopleSoft queries; one pooled connection per concurrent query."""

    def __init__(
        self,
        *,
        base_url: str,
        user: str,
        password: str,
        timeout: aiohttp.ClientTimeout | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 10,
    ) -> None:
        self.base_url = require_url(base_url, "PEOPLE_SOFT_URL")
        self._http = SourceHttp(
            source="PeopleSoft",
            url_variable="PEOPLE_SOFT_URL (default derived from CS_ENV)",
            credential_variables="PEOPLE_SOFT_USER/PEOPLE_SOFT_PASS",
            concurrency_variable="DATALOAD_PSQUERY_CONCURRENCY",
            auth=BasicAuth(user, password),
            secrets=(password,),
            timeout=timeout or timeouts(read=DEFAULT_READ_TIMEOUT),
            retry=retry or RetryPolicy(),
            max_connections=max_connections,
        )

    @classmethod
    def settings_options(cls, settings: Settings) -> dict[str, Any]:
        return {
            "base_url": settings.people_soft_base_url,
            "user": settings.people_soft_user,
            "password": settings.people_soft_pass.get_secret_value(),
            "max_connections": settings.psquery_concurrency,
            "timeout": timeouts(read=settings.peoplesoft_timeout_s),
        }

    def query_url(self, name: str, prompts: dict[str, str] | None = None) -> str:
        """The full URL of query `name` with its prompts (names and values, in matching order)."""
        if not _QUERY_NAME.fullmatch(name):
            raise ValueError(f"not a PeopleSoft query name: {name!r}")
        url = f"{self.base_url}{_QUERY_PATH.format(query=name)}?{_FIXED_PARAMS}"
        if prompts:
            for value in prompts.values():
                if "," in value:
                    # The two lists are comma-separated: a comma inside a value cannot be sent.
                    raise ValueError(f"a PeopleSoft prompt value cannot contain a comma: {value!r}")
            names = ",".join(quote(prompt, safe="") for prompt in prompts)
            values = ",".join(quote(value, safe="") for value in prompts.values())
            url += f"&prompt_uniquepromptname={names}&prompt_fieldvalue={values}"
        return url

    async def query(self, name: str, prompts: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """The rows of query `name`, with alias prefixes removed from field names."""
        url = self.query_url(name, prompts)
        label = f"PeopleSoft query {name}"
        body = await self._http.request_json("GET", url, source=label)
        return [normalise_row(row) for row in self._rows(body, url, label)]

    async def terms(self) -> list[dict[str, Any]]:
        """One row per (ACAD_CAREER, STRM) from BU_TERM_QRY."""
        return await self.query(TERMS_QUERY)

    async def student_ids(self) -> list[str]:
        """Student BUIDs from BU_PARM_0216_QRY, de-duplicated, in the order first seen."""
        url = self.query_url(STUDENTS_QUERY)
        label = f"PeopleSoft query {STUDENTS_QUERY}"
        body = await self._http.request_json(
            "GET", url, source=label, large=True, each_object=_StudentRow.of
        )
        ids: dict[str, None] = {}
        for row in self._rows(body, url, label, row_type=(dict, _StudentRow)):
            if not isinstance(row, _StudentRow):
                raise self._http.shape_error(url, "answered a row without CAMPUS_ID", source=label)
            campus_id = row.campus_id
            if campus_id is not None and (campus_id := str(campus_id).strip()):
                ids[campus_id] = None
        return list(ids)

    async def uid_car_term(self, buid: str) -> list[dict[str, Any]]:
        """The person's career/term rows from BU_TERM_STD_FULL_TERM; [] without a student record."""
        return await self.query(UID_CAR_TERM_QUERY, {"BUID": buid})

    def _rows(
        self, body: Any, url: str, label: str, row_type: type | tuple[type, ...] = dict
    ) -> list[Any]:
        """The `rows` of a success body; anything else is an error naming what was wrong."""
        if not isinstance(body, dict):
            raise self._http.shape_error(url, "answered JSON that is not an object", source=label)
        status = body.get("status")
        if status != "success":
            raise SourceResponseError(
                source=label,
                endpoint=endpoint(url),
                problem=f"answered status {status!r}{self._http.quoted_message(body)}",
                hint="check the query name and that PEOPLE_SOFT_USER may run it",
            )
        data = body.get("data")
        query = data.get("query") if isinstance(data, dict) else None
        rows = query.get("rows") if isinstance(query, dict) else None
        if not isinstance(rows, list) or not all(isinstance(row, row_type) for row in rows):
            raise self._http.shape_error(
                url, "answered without a data.query.rows list of objects", source=label
            )
        numrows = query.get("numrows")
        if isinstance(numrows, int) and numrows != len(rows):
            raise self._http.shape_error(
                url, f"announced {numrows} rows but sent {len(rows)}", source=label
            )
        return rows
