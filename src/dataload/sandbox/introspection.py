"""`/_sandbox/...`: the truth of the day, request statistics and run-time knobs.

No real system has these paths; they never pass through the gate (no faults, no auth).

- GET  /_sandbox/truth?day=N              summary: counts, active UGRD terms, change counts
- GET  /_sandbox/truth/persons?day=N      every ID per source; changed/shuffled/arrived/left
- GET  /_sandbox/truth/terms?day=N        term rows, current terms, active UGRD terms
- GET  /_sandbox/truth/courses?day=N&term=2268&term=...   course keys and their changes
- GET  /_sandbox/stats, POST /_sandbox/stats/reset
- GET  /_sandbox/config, PATCH /_sandbox/config  {"day": 2, "faults": {...}, ...}
"""

from __future__ import annotations

from dataclasses import asdict, fields

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dataload.sandbox.config import Faults, Latency, SandboxConfig
from dataload.sandbox.gate import Gate
from dataload.sandbox.systems import json_response
from dataload.sandbox.truth import course_truth, person_truth, term_truth

__all__ = ["routes"]

# Knobs a running server lets you change over HTTP (data-shaping ones need a restart).
_PATCHABLE = {
    "day",
    "latency",
    "faults",
    "endpoint_latency",
    "endpoint_faults",
    "snaplogic_concurrency_limit",
    "retry_after_s",
    "hang_s",
    "empty_object_rate",
    "left_out_rate",
    "alias_rate",
    "vds_page_size",
}


def _day(config: SandboxConfig, request: Request) -> int:
    return int(request.query_params.get("day", config.day))


def routes(config: SandboxConfig, gate: Gate) -> list[Route]:
    async def summary(request: Request) -> Response:
        day = _day(config, request)
        people = await anyio.to_thread.run_sync(person_truth, config, day)
        terms = term_truth(config, day)
        body = {
            "day": day,
            "date": people.date,
            "seed": config.seed,
            "counts": {
                name: len(getattr(people, name))
                for name in (
                    "persons",
                    "students",
                    "employees_active",
                    "employees_inactive",
                    "faculty",
                    "staff",
                    "flow_ids",
                    "changed",
                    "shuffled",
                    "arrived",
                    "left",
                )
            },
            "current_terms": terms["current"],
            "active_ugrd_terms": terms["active_ugrd_terms"],
        }
        return json_response(body)

    async def persons(request: Request) -> Response:
        truth = await anyio.to_thread.run_sync(person_truth, config, _day(config, request))
        return json_response(truth.to_dict())

    async def terms(request: Request) -> Response:
        return json_response(term_truth(config, _day(config, request)))

    async def courses(request: Request) -> Response:
        codes = request.query_params.getlist("term") or None
        day = _day(config, request)
        return json_response(await anyio.to_thread.run_sync(course_truth, config, day, codes))

    async def stats(request: Request) -> Response:
        return json_response(gate.stats.snapshot())

    async def reset_stats(request: Request) -> Response:
        gate.stats.reset()
        return json_response(gate.stats.snapshot())

    async def show_config(request: Request) -> Response:
        return json_response(_public(config))

    async def patch_config(request: Request) -> Response:
        try:
            changes = orjson.loads(await request.body())
            _apply(config, changes)
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            return json_response({"error": f"config not changed: {exc}"}, 400)
        return json_response(_public(config))

    return [
        Route("/_sandbox/truth", summary, methods=["GET"]),
        Route("/_sandbox/truth/persons", persons, methods=["GET"]),
        Route("/_sandbox/truth/terms", terms, methods=["GET"]),
        Route("/_sandbox/truth/courses", courses, methods=["GET"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/stats/reset", reset_stats, methods=["POST"]),
        Route("/_sandbox/config", show_config, methods=["GET"]),
        Route("/_sandbox/config", patch_config, methods=["PATCH"]),
    ]


def _public(config: SandboxConfig) -> dict[str, object]:
    """The config without credentials (secrets never leave through an endpoint)."""
    data = asdict(config)
    del data["credentials"]
    data["start_date"] = config.start_date.isoformat()
    # Sets (the people whose documents are unreadable) as sorted lists: JSON has no sets.
    return {k: sorted(v) if isinstance(v, set | frozenset) else v for k, v in data.items()}


def _apply(config: SandboxConfig, changes: object) -> None:
    if not isinstance(changes, dict):
        raise ValueError("body must be a JSON object of knobs")
    unknown = set(changes) - _PATCHABLE
    if unknown:
        raise ValueError(
            f"cannot change {sorted(unknown)} at run time; allowed: {sorted(_PATCHABLE)}"
        )
    for name, value in changes.items():
        if name in ("latency", "faults"):
            value = _build(Latency if name == "latency" else Faults, value)
        elif name in ("endpoint_latency", "endpoint_faults"):
            kind = Latency if name == "endpoint_latency" else Faults
            value = {endpoint: _build(kind, v) for endpoint, v in dict(value).items()}
        elif name == "day" and int(value) < 1:
            raise ValueError("day must be 1 or more")
        setattr(config, name, value)


def _build(kind: type, value: object) -> object:
    if not isinstance(value, dict):
        raise ValueError(f"{kind.__name__} must be a JSON object")
    names = {f.name for f in fields(kind)}
    if not set(value) <= names:
        raise ValueError(f"{kind.__name__} accepts only {sorted(names)}")
    return kind(**value)
