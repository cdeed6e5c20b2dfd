"""VDS (RadiantOne ADAP): GET /adap/{baseDN}?filter=(attr=value)&attributes=...&scope=sub,
HTTP Basic auth, paged with an opaque cookie.

A page holds at most min(sizeLimit, vds_page_size) entries. The cookie records where the scan
stopped, so each page costs only the people it walks over; the last page has no cookie (or
`"cookie": null` after several pages). A cookie from another day or filter is refused.
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dataload.sandbox.config import SandboxConfig
from dataload.sandbox.gate import Gate
from dataload.sandbox.population import Population
from dataload.sandbox.systems import VDS, basic_credentials, matches
from dataload.sandbox.university import university_for

__all__ = ["routes"]

_FILTER = re.compile(r"^\((\w+)=([^()*=]+)\)$")
_ATTRIBUTES = ("PersonBuid", "PersonPrimaryAffiliation", "uid", "cn", "mail")
_AFFILIATIONS = ("student", "faculty", "staff", "affiliate")


def routes(config: SandboxConfig, gate: Gate) -> list[Route]:
    async def search(request: Request) -> Response:
        creds = basic_credentials(request)
        c = config.credentials
        authorized = creds is not None and (
            matches(creds[0], c.vds_user) & matches(creds[1], c.vds_password)
        )

        async def answer() -> Response:
            return await _search(config, request)

        return await gate("vds.search", VDS, authorized=authorized, answer=answer)

    return [Route("/vds/adap/{base_dn:path}", search, methods=["GET"])]


def _normal_dn(dn: str) -> str:
    return ",".join(part.strip().lower() for part in dn.split(","))


async def _search(config: SandboxConfig, request: Request) -> Response:
    params = request.query_params
    base_dn = request.path_params["base_dn"]
    people_dn = _normal_dn(config.vds_base_dn)
    if not people_dn.endswith(_normal_dn(base_dn)):
        return VDS.error(404, f"No such object: {base_dn}")
    match = _FILTER.match(params.get("filter", ""))
    if not match or match[1] not in ("PersonPrimaryAffiliation", "PersonBuid"):
        return VDS.error(
            400, "filter must be (PersonPrimaryAffiliation=<value>) or (PersonBuid=<BUID>)"
        )
    scope = params.get("scope", "sub")
    if scope not in ("sub", "one", "base"):
        return VDS.error(400, f"scope must be sub, one or base, got {scope!r}")
    try:
        size_limit = int(params.get("sizeLimit", "0"))
    except ValueError:
        return VDS.error(400, "sizeLimit must be an integer")
    page_size = min(size_limit, config.vds_page_size) if size_limit > 0 else config.vds_page_size
    wanted = [a for a in params.get("attributes", ",".join(_ATTRIBUTES)).split(",") if a]
    day, text = config.day, params["filter"]
    start = 0
    if cookie := params.get("cookie"):
        start = _resume(cookie, text, day)
        if start is None:
            return VDS.error(400, "Invalid or expired paging cookie: start the search again")
    if scope == "base":  # the base entry itself is an organisational unit, not a person
        return _page([], 0, None, paged=bool(cookie))

    def build() -> Response:
        population = university_for(config).population
        attribute, value = match[1], match[2]
        total = _count(population, day, attribute, value)
        found, next_start = _scan(population, day, attribute, value, start, page_size)
        resources = [
            {
                "dn": f"uid={population.buid(i)},{config.vds_base_dn}",
                "attributes": _attributes(population, i, wanted),
            }
            for i in found
        ]
        next_cookie = _cookie(text, day, next_start) if next_start is not None else None
        return _page(resources, total, next_cookie, paged=bool(cookie))

    return await anyio.to_thread.run_sync(build)


def _page(resources: list, total: int, cookie: str | None, *, paged: bool) -> Response:
    body: dict[str, object] = {"httpStatus": 200, "totalResults": total, "resources": resources}
    if cookie is not None or paged:
        body["cookie"] = cookie
    return Response(orjson.dumps(body), media_type="application/json")


def _matches(population: Population, i: int, attribute: str, value: str) -> bool:
    if attribute == "PersonBuid":
        return population.buid(i) == value.upper()
    return population.roles(i).primary == value.lower()


def _candidates(population: Population, day: int, attribute: str, value: str, start: int):
    if attribute == "PersonBuid":
        i = population.index_of(value)
        return [i] if i is not None and i >= start and population.present(i, day) else []
    if value.lower() not in _AFFILIATIONS:
        return []
    return (i for i in range(start, population.universe(day)) if population.present(i, day))


def _scan(
    population: Population, day: int, attribute: str, value: str, start: int, size: int
) -> tuple[list[int], int | None]:
    """Up to `size` matching indexes from `start`, and where the next page starts (or None)."""
    found: list[int] = []
    for i in _candidates(population, day, attribute, value, start):
        if _matches(population, i, attribute, value):
            if len(found) == size:
                return found, i
            found.append(i)
    return found, None


@lru_cache(maxsize=64)
def _count(population: Population, day: int, attribute: str, value: str) -> int:
    return sum(
        1
        for i in _candidates(population, day, attribute, value, 0)
        if _matches(population, i, attribute, value)
    )


def _attributes(population: Population, i: int, wanted: list[str]) -> dict[str, str]:
    buid = population.buid(i)
    values = {
        "PersonBuid": buid,
        "PersonPrimaryAffiliation": population.roles(i).primary,
        "uid": buid,
        "cn": buid,
        "mail": f"{buid.lower()}@bu.edu",
    }
    return {name: values[name] for name in wanted if name in values}


def _cookie(filter_text: str, day: int, start: int) -> str:
    raw = orjson.dumps({"f": filter_text, "d": day, "s": start})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _resume(cookie: str, filter_text: str, day: int) -> int | None:
    try:
        state = orjson.loads(base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4)))
        if state["f"] == filter_text and state["d"] == day:
            return int(state["s"])
    except (ValueError, KeyError, TypeError):
        pass
    return None
