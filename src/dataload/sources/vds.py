"""VDS (RadiantOne REST, ADAP), HTTP Basic auth.

`GET {VDS_URL}/adap/{baseDN}?filter=(PersonPrimaryAffiliation={affiliation})&attributes=PersonBuid
&scope=sub&sizeLimit=25000` answers `{"httpStatus": 200, "totalResults": N, "resources":
[{"dn": .., "attributes": {"PersonBuid": "U12345678"}}], "cookie": ".."}`; while `cookie` is
present and not null, sending it back (`&cookie=..`) gives the next page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from dataload.settings import Settings
from dataload.sources.auth import BasicAuth
from dataload.sources.http import SourceClient, SourceHttp, require_url, timeouts
from dataload.sources.retry import RetryPolicy

__all__ = ["Vds"]

#: Seconds one page may take.
DEFAULT_READ_TIMEOUT = 120.0
DEFAULT_BASE_DN = "ou=people,dc=bu,dc=edu"
PAGE_SIZE = 25_000


class Vds(SourceClient):
    """Lists people's BUIDs by primary affiliation (faculty, staff), following the paging cookie."""

    def __init__(
        self,
        *,
        url: str,
        username: str,
        password: str,
        base_dn: str = DEFAULT_BASE_DN,
        page_size: int = PAGE_SIZE,
        timeout: aiohttp.ClientTimeout | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        # The DN is one path segment: its `=` and `,` are legal there and kept readable.
        self.url = f"{require_url(url, 'VDS_URL')}/adap/{quote(base_dn, safe='=,')}"
        self.page_size = page_size
        self._http = SourceHttp(
            source="VDS directory",
            url_variable="VDS_URL (and VDS_BASE_DN)",
            credential_variables="VDS_USERNAME/VDS_PASSWORD",
            auth=BasicAuth(username, password),
            secrets=(password,),
            timeout=timeout or timeouts(read=DEFAULT_READ_TIMEOUT),
            retry=retry or RetryPolicy(),
            max_connections=2,
        )

    @classmethod
    def settings_options(cls, settings: Settings) -> dict[str, Any]:
        return {
            "url": settings.vds_url,
            "username": settings.vds_username,
            "password": settings.vds_password.get_secret_value(),
            "base_dn": settings.vds_base_dn,
        }

    async def person_ids(self, affiliation: str) -> list[str]:
        """BUIDs of people whose primary affiliation is `affiliation`, over every page,
        de-duplicated, in the order listed."""
        if not affiliation.isalpha():
            # It goes into an LDAP filter: anything but a plain word could change the search.
            raise ValueError(f"not an affiliation: {affiliation!r}")
        label = f"VDS directory ({affiliation})"
        params = {
            "filter": f"(PersonPrimaryAffiliation={affiliation})",
            "attributes": "PersonBuid",
            "scope": "sub",
            "sizeLimit": str(self.page_size),
        }
        ids: dict[str, None] = {}
        seen_cookies: set[str] = set()
        entries, total = 0, None
        while True:
            body = await self._http.request_json("GET", self.url, source=label, params=params)
            for buid in self._page_ids(body, label):
                ids[buid] = None
            entries += len(body["resources"]) if "resources" in body else 0
            if total is None and isinstance(body.get("totalResults"), int):
                total = body["totalResults"]
            cookie = body.get("cookie")
            if cookie is None or cookie == "":
                if total is not None and entries < total:
                    # A listing cut short (a size limit, a lost cookie) must not pass for the
                    # whole directory: the person flow would delete the people left out.
                    raise self._http.shape_error(
                        self.url,
                        f"listed {entries} of the {total} entries it counted (cut short)",
                        source=label,
                    )
                return list(ids)
            if not isinstance(cookie, str):
                raise self._http.shape_error(
                    self.url, "answered a paging cookie that is not a string", source=label
                )
            if cookie in seen_cookies:  # following it would page forever
                raise self._http.shape_error(
                    self.url, "answered a paging cookie it had already sent", source=label
                )
            seen_cookies.add(cookie)
            params = {**params, "cookie": cookie}

    def _page_ids(self, body: Any, label: str) -> list[str]:
        if not isinstance(body, dict):
            raise self._http.shape_error(
                self.url, "answered JSON that is not an object", source=label
            )
        status = body.get("httpStatus", 200)
        if status != 200:
            raise self._http.shape_error(self.url, f"answered httpStatus {status!r}", source=label)
        resources = body.get("resources", [])
        if not isinstance(resources, list):
            raise self._http.shape_error(
                self.url, "answered a resources that is not an array", source=label
            )
        ids = []
        for resource in resources:
            attributes = resource.get("attributes") if isinstance(resource, dict) else None
            if not isinstance(attributes, dict):
                raise self._http.shape_error(
                    self.url, "answered a resource without attributes", source=label
                )
            # LDAP attributes may be multi-valued; a person without a BUID is not listed.
            value = attributes.get("PersonBuid")
            for buid in value if isinstance(value, list) else [value]:
                if buid and (buid := str(buid).strip()):
                    ids.append(buid)
        return ids
