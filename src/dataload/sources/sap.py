"""SAP employee list, API key in `x-api-key`.

`POST {SAP_URL}?BAPIName=Z_HR_EMPLOYEE_OBJ_LIST&account=HR` with body `{}` answers
`{"ET_EMP_LIST": [{"BUID": "U12345678", "EMP_STATUS": "3 - Active"}, ...]}`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import aiohttp

from dataload.settings import Settings
from dataload.sources.auth import ApiKeyAuth
from dataload.sources.http import SourceClient, SourceHttp, require_url, timeouts
from dataload.sources.retry import RetryPolicy

__all__ = ["ACTIVE_STATUS", "Sap"]

ACTIVE_STATUS = "3 - Active"
#: Seconds the BAPI may take to list every employee.
DEFAULT_READ_TIMEOUT = 300.0
_PARAMS = {"BAPIName": "Z_HR_EMPLOYEE_OBJ_LIST", "account": "HR"}


class Sap(SourceClient):
    """Lists active employees' BUIDs."""

    def __init__(
        self,
        *,
        url: str,
        key: str,
        timeout: aiohttp.ClientTimeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = require_url(url, "SAP_URL")
        self._http = SourceHttp(
            source="SAP employee list",
            url_variable="SAP_URL",
            credential_variables="SAP_KEY",
            auth=ApiKeyAuth(key),
            secrets=(key,),
            timeout=timeout or timeouts(read=DEFAULT_READ_TIMEOUT),
            retry=retry or RetryPolicy(),
            max_connections=1,
        )

    @classmethod
    def settings_options(cls, settings: Settings) -> dict[str, Any]:
        return {
            "url": settings.sap_url,
            "key": settings.sap_key.get_secret_value(),
        }

    async def active_employee_ids(self) -> list[str]:
        """BUIDs of employees with EMP_STATUS "3 - Active", de-duplicated, in the order listed."""
        body = await self._http.request_json(
            "POST", self.url, params=_PARAMS, json_body={}, large=True, each_object=_Employee.of
        )
        employees = body.get("ET_EMP_LIST") if isinstance(body, dict) else None
        if not isinstance(employees, list) or not all(
            isinstance(e, dict | _Employee) for e in employees
        ):
            raise self._http.shape_error(self.url, "answered without an ET_EMP_LIST array")
        ids: dict[str, None] = {}
        for employee in employees:
            if not isinstance(employee, _Employee):
                continue  # an entry without BUID
            buid, status = employee
            if status == ACTIVE_STATUS and buid and (buid := str(buid).strip()):
                ids[buid] = None
        return list(ids)


class _Employee(NamedTuple):
    """An entry of ET_EMP_LIST reduced, while it is decoded, to what the list is read for: a
    large university's list never exists as tens of thousands of dicts at once."""

    buid: Any
    status: Any

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Any:
        """The entry, reduced; any other object (the envelope) as it is."""
        return cls(obj["BUID"], obj.get("EMP_STATUS")) if "BUID" in obj else obj
