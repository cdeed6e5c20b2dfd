"""PeopleSoft Query Access Service: ExecuteQuery for BU_TERM_QRY, BU_PARM_0216_QRY and
BU_TERM_STD_FULL_TERM, HTTP Basic auth.

Some rows carry the record alias prefix (`A.STRM`), as connected queries do in production.
The student list is streamed so that 200,000 people never sit in memory at once.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from dataload.sandbox.config import SandboxConfig
from dataload.sandbox.gate import Gate
from dataload.sandbox.rng import Tag, unit
from dataload.sandbox.systems import PEOPLESOFT, basic_credentials, json_response, matches
from dataload.sandbox.university import university_for

__all__ = ["QUERY_PATH", "routes"]

QUERY_PATH = "/PSIGW/RESTListeningConnector/PSFT_CS/ExecuteQuery.v1/PUBLIC/{query}/JSON/NONFILE"
_PROMPTS = {"BU_TERM_QRY": (), "BU_PARM_0216_QRY": (), "BU_TERM_STD_FULL_TERM": ("BUID",)}
_CHUNK = 2000


def routes(config: SandboxConfig, gate: Gate) -> list[Route]:
    async def execute_query(request: Request) -> Response:
        query = request.path_params["query"]
        creds = basic_credentials(request)
        c = config.credentials
        authorized = creds is not None and (
            matches(creds[0], c.peoplesoft_user) & matches(creds[1], c.peoplesoft_password)
        )

        async def answer() -> Response:
            return _answer(config, request, query)

        return await gate(f"peoplesoft.{query}", PEOPLESOFT, authorized=authorized, answer=answer)

    return [Route(f"/ps{QUERY_PATH}", execute_query, methods=["GET"])]


def _answer(config: SandboxConfig, request: Request, query: str) -> Response:
    params = request.query_params
    if query not in _PROMPTS:
        return PEOPLESOFT.error(404, f"Query {query} does not exist or you are not authorized")
    if params.get("json_resp", "").lower() != "true":
        return PEOPLESOFT.error(400, "this sandbox answers JSON only: pass json_resp=true")
    names = [n for n in params.get("prompt_uniquepromptname", "").split(",") if n]
    values = params.get("prompt_fieldvalue", "").split(",") if names else []
    if len(names) != len(values):
        return PEOPLESOFT.error(
            400, "prompt_uniquepromptname and prompt_fieldvalue must list as many items"
        )
    prompts = dict(zip(names, values, strict=True))
    expected = _PROMPTS[query]
    if sorted(prompts) != sorted(expected):
        return PEOPLESOFT.error(
            400, f"Query {query} expects prompts {list(expected)}, got {sorted(prompts)}"
        )
    try:
        maxrows = int(params.get("maxrows", "0"))
    except ValueError:
        return PEOPLESOFT.error(400, "maxrows must be an integer")
    university = university_for(config)
    day = config.day
    if query == "BU_PARM_0216_QRY":
        return StreamingResponse(
            _stream_students(config, day, maxrows), media_type="application/json"
        )
    if query == "BU_TERM_QRY":
        rows = university.term_rows(day)
    else:
        index = university.population.index_of(prompts["BUID"])
        rows = [] if index is None else university.persons.uid_car_term(index, day)
        for number, row in enumerate(rows, 1):
            rows[number - 1] = {"attr:rownumber": number, **row}
    if maxrows > 0:
        rows = rows[:maxrows]
    return json_response(_envelope(query, _aliased(rows, config.seed, query, config.alias_rate)))


def _envelope(query: str, rows: list[dict[str, object]]) -> dict[str, object]:
    return {
        "status": "success",
        "data": {"query": {"numrows": len(rows), "queryname": query, "rows": rows}},
    }


def _aliased(rows: list[dict], seed: int, query: str, rate: float) -> list[dict]:
    """Prefix the fields of some rows with the record alias `A.`."""
    salt = zlib.crc32(query.encode())
    return [
        {(k if k == "attr:rownumber" else f"A.{k}"): v for k, v in row.items()}
        if unit(seed, Tag.ALIAS, salt, int(row["attr:rownumber"])) < rate
        else row
        for row in rows
    ]


def _stream_students(config: SandboxConfig, day: int, maxrows: int) -> Iterator[bytes]:
    """BU_PARM_0216_QRY as a stream of bytes; `numrows` comes after the rows."""
    population = university_for(config).population
    query = "BU_PARM_0216_QRY"
    yield b'{"status": "success", "data": {"query": {"queryname": "BU_PARM_0216_QRY", "rows": ['
    count, chunk = 0, []
    for i in population.present_indexes(day):
        if not population.roles(i).student:
            continue
        if 0 < maxrows <= count:
            break
        count += 1
        chunk.append({"attr:rownumber": count, "CAMPUS_ID": population.buid(i)})
        if len(chunk) == _CHUNK:
            yield _rows_chunk(chunk, config, query, count == len(chunk))
            chunk = []
    if chunk:
        yield _rows_chunk(chunk, config, query, count == len(chunk))
    yield b'], "numrows": %d}}}' % count


def _rows_chunk(chunk: list[dict], config: SandboxConfig, query: str, first: bool) -> bytes:
    body = orjson.dumps(_aliased(chunk, config.seed, query, config.alias_rate))[1:-1]
    return body if first else b"," + body
