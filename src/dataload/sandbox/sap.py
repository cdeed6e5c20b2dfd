"""SAP employee list: POST ?BAPIName=Z_HR_EMPLOYEE_OBJ_LIST&account=HR, key in `x-api-key`.

Lists every present employee with an EMP_STATUS; only `3 - Active` ones are active.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from dataload.sandbox.config import SandboxConfig
from dataload.sandbox.gate import Gate
from dataload.sandbox.systems import SAP, matches
from dataload.sandbox.university import university_for

__all__ = ["routes"]

_BAPI = "Z_HR_EMPLOYEE_OBJ_LIST"
_CHUNK = 2000


def routes(config: SandboxConfig, gate: Gate) -> list[Route]:
    async def employees(request: Request) -> Response:
        authorized = matches(request.headers.get("x-api-key"), config.credentials.sap_key)

        async def answer() -> Response:
            params = request.query_params
            if params.get("BAPIName") != _BAPI or params.get("account") != "HR":
                return SAP.error(400, f"unknown function: pass BAPIName={_BAPI}&account=HR")
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                body = None
            if not isinstance(body, dict):
                return SAP.error(400, "body must be a JSON object ({} for the full list)")
            return StreamingResponse(_stream(config, config.day), media_type="application/json")

        return await gate("sap.employees", SAP, authorized=authorized, answer=answer)

    return [Route("/sap", employees, methods=["POST"])]


def _stream(config: SandboxConfig, day: int) -> Iterator[bytes]:
    population = university_for(config).population
    yield b'{"ET_EMP_LIST": ['
    chunk: list[dict[str, str]] = []
    first = True
    for i in population.present_indexes(day):
        roles = population.roles(i)
        if not roles.employee:
            continue
        chunk.append(
            {
                "BUID": population.buid(i),
                "PERNR": population.emplid(i),
                "EMP_STATUS": roles.emp_status or "",
            }
        )
        if len(chunk) == _CHUNK:
            yield (b"" if first else b",") + orjson.dumps(chunk)[1:-1]
            chunk, first = [], False
    if chunk:
        yield (b"" if first else b",") + orjson.dumps(chunk)[1:-1]
    yield b"]}"
