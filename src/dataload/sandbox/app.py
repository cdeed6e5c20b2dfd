"""The sandbox ASGI application: PeopleSoft, SnapLogic, SAP and VDS under one server.

    /ps/PSIGW/RESTListeningConnector/PSFT_CS/ExecuteQuery.v1/PUBLIC/{QUERY}/JSON/NONFILE
    /snaplogic/course        /snaplogic/person        /sap        /vds/adap/{baseDN}
    /_sandbox/...            truth, statistics and knobs (see introspection.py)

The app reads `config` on every request: change a field and the next request sees it.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dataload.sandbox import examples, introspection, peoplesoft, sap, snaplogic, vds
from dataload.sandbox.config import Credentials, DayRates, Faults, Latency, SandboxConfig
from dataload.sandbox.gate import Gate
from dataload.sandbox.systems import json_response

__all__ = ["Credentials", "DayRates", "Faults", "Latency", "SandboxConfig", "create_app"]


def create_app(config: SandboxConfig | None = None) -> Starlette:
    config = config or SandboxConfig()
    gate = Gate(config)

    async def index(request: Request) -> Response:
        return json_response(
            {
                "sandbox": "dataload",
                "systems": {
                    "PEOPLE_SOFT_URL": "/ps",
                    "SNAPLOGIC_COURSE_URL": "/snaplogic/course",
                    "SNAPLOGIC_PERSON_URL": "/snaplogic/person",
                    "SAP_URL": "/sap",
                    "VDS_URL": "/vds",
                },
                "examples": examples.environment(config, ""),
                "introspection": "/_sandbox/truth",
            }
        )

    routes = [
        Route("/", index, methods=["GET"]),
        *peoplesoft.routes(config, gate),
        *snaplogic.routes(config, gate),
        *sap.routes(config, gate),
        *vds.routes(config, gate),
        *introspection.routes(config, gate),
        *examples.routes(config, gate),
    ]
    app = Starlette(routes=routes)
    app.state.config = config
    app.state.gate = gate
    return app
