"""SnapLogic triggered tasks: course (GET per term) and person (POST of uidCarTerm rows).

API key in `x-api-key` or `Authorization: Bearer`. Each task allows
`snaplogic_concurrency_limit` calls at once and answers 429 with Retry-After beyond it.
Person answers carry a few `{}` documents, as the real service does; a requested person who
is unknown or gone today is simply absent; `unreadable_people` get a document with a `NaN`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dataload.sandbox.config import SandboxConfig
from dataload.sandbox.drift import apply_drifts
from dataload.sandbox.gate import Gate, Stats
from dataload.sandbox.persons import ALL_OBJECTS
from dataload.sandbox.rng import Tag, unit
from dataload.sandbox.systems import SNAPLOGIC, matches
from dataload.sandbox.university import university_for

__all__ = ["routes"]


class _Builders:
    """At most two answers built at once: builders are CPU-bound and share the GIL, so more
    would only hold more half-built answers in memory. Made on first use, in the app's loop."""

    def __init__(self, stats: Stats) -> None:
        self._limiter: anyio.CapacityLimiter | None = None
        self.rng = random.Random()  # the left-out fault: a fresh draw per request
        self.stats = stats  # counts the people each call asks for

    async def run(self, build: Callable[[], bytes]) -> Response:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(2)
        body = await anyio.to_thread.run_sync(build, limiter=self._limiter)
        return Response(body, media_type="application/json")


def _api_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key is not None:
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


def routes(config: SandboxConfig, gate: Gate) -> list[Route]:
    builders = _Builders(gate.stats)

    def task(endpoint: str, key: Callable[[], str], build: Callable[..., Awaitable[Response]]):
        async def handle(request: Request) -> Response:
            async def answer() -> Response:
                return await build(config, builders, request)

            return await gate(
                endpoint,
                SNAPLOGIC,
                authorized=matches(_api_key(request), key()),
                answer=answer,
                concurrency_limit=config.snaplogic_concurrency_limit,
            )

        return handle

    # Keys read per request: a test may rotate them while the sandbox runs.
    course = task("snaplogic.course", lambda: config.credentials.snaplogic_course_key, _courses)
    person = task("snaplogic.person", lambda: config.credentials.snaplogic_person_key, _persons)

    return [
        Route("/snaplogic/course", course, methods=["GET"]),
        Route("/snaplogic/person", person, methods=["POST"]),
    ]


def _cs_env_error(config: SandboxConfig, request: Request) -> Response | None:
    cs_env = request.query_params.get("csEnv")
    if cs_env != config.cs_env:
        return SNAPLOGIC.error(400, f"csEnv must be {config.cs_env!r}, got {cs_env!r}")
    return None


async def _courses(config: SandboxConfig, builders: _Builders, request: Request) -> Response:
    if error := _cs_env_error(config, request):
        return error
    strm = request.query_params.get("term", "")
    if not (len(strm) == 4 and strm.isdigit()):
        return SNAPLOGIC.error(400, f"term must be a 4-digit STRM code, got {strm!r}")
    day = config.day

    def build() -> bytes:
        university = university_for(config)
        catalog = university.courses
        documents = []
        for term in university.terms_with_code(strm, day):
            courses = [
                {"v2": v2} for j in catalog.offered(term, day) for v2 in catalog.rows(term, j, day)
            ]
            documents.append(
                {
                    "termDetails": {
                        "academicCareer": term.career,
                        "term": {
                            "code": term.strm,
                            "description": term.descr,
                            "beginDate": term.begin.isoformat(),
                            "endDate": term.end.isoformat(),
                        },
                    },
                    "courses": courses,
                }
            )
        return orjson.dumps(documents)

    return await builders.run(build)


def _objects(text: str | None) -> frozenset[str] | None:
    """`['student','faculty']` -> {"student", "faculty"}; None when malformed."""
    if text is None:
        return ALL_OBJECTS
    names = frozenset(part.strip().strip("'\"") for part in text.strip().strip("[]").split(","))
    return names if names and names <= ALL_OBJECTS else None


async def _persons(config: SandboxConfig, builders: _Builders, request: Request) -> Response:
    if error := _cs_env_error(config, request):
        return error
    objects = _objects(request.query_params.get("objects"))
    if objects is None:
        return SNAPLOGIC.error(400, f"objects must be a list drawn from {sorted(ALL_OBJECTS)}")
    try:
        body = orjson.loads(await request.body())
        rows = orjson.loads(body["uidCarTerm"])
        ids = list(dict.fromkeys(row["CAMPUS_ID"] for row in rows))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return SNAPLOGIC.error(
            400,
            'body must be {"uidCarTerm": "<JSON text of a list of rows with CAMPUS_ID>"}',
        )
    builders.stats.asked("snaplogic.person", len(ids))
    day = config.day
    left_out = {buid for buid in ids if builders.rng.random() < config.left_out_rate}

    def build() -> bytes:
        # Each document is serialised as soon as it is built: a batch of 1000 people holds
        # a few MB of bytes, not 1000 nested dicts.
        university = university_for(config)
        population, persons = university.population, university.persons
        parts: list[bytes] = []
        for buid in ids:
            i = population.index_of(str(buid))
            if i is None or not population.present(i, day) or buid in left_out:
                continue
            found = persons.document(i, day, objects)
            if config.drifts:
                apply_drifts(found, config.drifts, day)
            document = orjson.dumps(found)
            if buid in config.unreadable_people:
                document = document[:-1] + b',"gpaEstimate":NaN}'
            parts.append(document)
            if unit(config.seed, Tag.EMPTY_OBJECT, day, i) < config.empty_object_rate:
                parts.append(b"{}")
        return b"[" + b",".join(parts) + b"]"

    return await builders.run(build)
