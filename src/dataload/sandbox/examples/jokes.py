"""A small jokes API (seed 003), in the manner of icanhazdadjoke.com, behind an API key.

    GET /jokes    header x-api-key  ->  {"id": "...", "joke": "...", "status": 200}

Each call answers one joke of a fixed pool of `_POOL`, drawn in turn from the seed, so that a
run of a few calls sees mostly new jokes and sometimes one it has seen before.
"""

from __future__ import annotations

import itertools

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dataload.sandbox.config import SandboxConfig
from dataload.sandbox.gate import Gate
from dataload.sandbox.rng import mix
from dataload.sandbox.systems import System, json_response, matches

__all__ = ["JOKES", "joke", "routes"]

JOKES = System("jokes", b'{"id": "R7UfaahVfFd", "joke": "My dog used to chase', None)
_POOL = 500
_WHO = ("skeleton", "calendar", "database", "scarecrow", "cursor", "bicycle", "index", "penguin")
_WHY = (
    "did not cross the road",
    "went to the party alone",
    "asked for a raise",
    "stayed in on Friday",
    "never finished its work",
)
_BECAUSE = (
    "it had no body to go with",
    "its days were numbered",
    "it was out standing in its field",
    "it lost its place",
    "it was two tired",
    "it could not commit",
)


def joke(seed: int, n: int) -> dict[str, object]:
    h = mix(seed, 3003, n)
    who, why, because = _WHO[h % 8], _WHY[(h >> 8) % 5], _BECAUSE[(h >> 16) % 6]
    return {
        "id": f"J{h % 10**10:010d}",
        "joke": f"Why the {who} {why}? Because {because}.",
        "status": 200,
    }


def routes(config: SandboxConfig, gate: Gate) -> list[Route]:
    draws = itertools.count()

    async def random_joke(request: Request) -> Response:
        authorized = matches(request.headers.get("x-api-key"), config.examples.jokes_key)

        async def answer() -> Response:
            return json_response(joke(config.seed, mix(config.seed, next(draws)) % _POOL))

        return await gate("jokes.random", JOKES, authorized=authorized, answer=answer)

    return [Route("/jokes", random_joke, methods=["GET"])]
