"""How the real clients call each system, written out once for the sandbox's tests."""

from __future__ import annotations

import json

import httpx

PS_AUTH = ("sandbox", "sandbox")
COURSE_KEY = {"x-api-key": "sandbox-course-key"}
PERSON_KEY = {"x-api-key": "sandbox-person-key"}
SAP_KEY = {"x-api-key": "sandbox-sap-key"}
VDS_AUTH = ("sandbox", "sandbox")
OBJECTS = "['student','affiliate','faculty','employee']"
PEOPLE_DN = "ou=people,dc=bu,dc=edu"


def ps_path(query: str) -> str:
    return f"/ps/PSIGW/RESTListeningConnector/PSFT_CS/ExecuteQuery.v1/PUBLIC/{query}/JSON/NONFILE"


async def ps_query(
    client: httpx.AsyncClient,
    query: str,
    prompts: dict[str, str] | None = None,
    auth: tuple[str, str] = PS_AUTH,
) -> httpx.Response:
    params = {"isconnectedquery": "N", "maxrows": "0", "json_resp": "true"}
    if prompts:
        params["prompt_uniquepromptname"] = ",".join(prompts)
        params["prompt_fieldvalue"] = ",".join(prompts.values())
    return await client.get(ps_path(query), params=params, auth=auth)


def unalias(row: dict) -> dict:
    """`A.STRM` -> `STRM`, as the product normalises."""
    return {key.split(".", 1)[-1]: value for key, value in row.items()}


def ps_rows(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    query = body["data"]["query"]
    assert query["numrows"] == len(query["rows"])
    return [unalias(row) for row in query["rows"]]


async def courses(client: httpx.AsyncClient, term: str, **kw) -> httpx.Response:
    headers = kw.pop("headers", COURSE_KEY)
    params = {"term": term, "csEnv": "test", **kw}
    return await client.get("/snaplogic/course", params=params, headers=headers)


async def persons(
    client: httpx.AsyncClient, ids: list[str], *, headers: dict | None = None, **params: str
) -> httpx.Response:
    body = {"uidCarTerm": json.dumps([{"CAMPUS_ID": buid} for buid in ids])}
    query = {"objects": OBJECTS, "csEnv": "test", **params}
    return await client.post(
        "/snaplogic/person",
        params=query,
        json=body,
        headers=PERSON_KEY if headers is None else headers,
    )


async def sap_employees(client: httpx.AsyncClient, headers: dict = SAP_KEY) -> httpx.Response:
    params = {"BAPIName": "Z_HR_EMPLOYEE_OBJ_LIST", "account": "HR"}
    return await client.post("/sap", params=params, json={}, headers=headers)


async def vds_search(
    client: httpx.AsyncClient,
    affiliation: str,
    cookie: str | None = None,
    auth: tuple[str, str] = VDS_AUTH,
    size_limit: int = 25000,
) -> httpx.Response:
    params = {
        "filter": f"(PersonPrimaryAffiliation={affiliation})",
        "attributes": "PersonBuid",
        "scope": "sub",
        "sizeLimit": str(size_limit),
    }
    if cookie:
        params["cookie"] = cookie
    return await client.get(f"/vds/adap/{PEOPLE_DN}", params=params, auth=auth)


async def vds_all(client: httpx.AsyncClient, affiliation: str) -> tuple[list[str], int]:
    """Every PersonBuid of an affiliation, following cookies; and the number of pages."""
    ids, pages, cookie = [], 0, None
    while True:
        response = await vds_search(client, affiliation, cookie)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        ids.extend(r["attributes"]["PersonBuid"] for r in body["resources"])
        cookie = body.get("cookie")
        if not cookie:
            return ids, pages
