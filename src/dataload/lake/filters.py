"""Service filters as a version-controlled file (`services.toml`) synced into the database.

The file maps domain -> service -> paths. `sync_services` makes every domain's filters table
equal to it in one transaction; PostgreSQL validates the paths (lake.path_segments) and
re-derives the services that changed, so an invalid path changes nothing at all.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg
import orjson

__all__ = [
    "ServiceChange",
    "ServiceFilterError",
    "ServiceInfo",
    "default_services_file",
    "list_services",
    "read_services",
    "sync_services",
]

Services = dict[str, dict[str, list[str]]]


class ServiceFilterError(ValueError):
    """The services file, or a path in it, is not valid; nothing was changed."""


@dataclass(frozen=True)
class ServiceChange:
    domain: str
    service: str
    action: str  # added, changed, unchanged, removed


def default_services_file() -> Path:
    return Path(str(resources.files("dataload.lake") / "services.toml"))


def read_services(path: Path | None = None) -> Services:
    """domain -> service -> paths, as the file says (structure checked, paths not yet)."""
    path = path or default_services_file()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ServiceFilterError(f"{path}: cannot read the services file: {exc}") from None
    services: Services = {}
    for domain, table in data.items():
        if not isinstance(table, dict):
            raise ServiceFilterError(f"{path}: [{domain}] must be a table of service = [paths]")
        for service, paths in table.items():
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise ServiceFilterError(
                    f"{path}: {domain}.{service} must be a list of path strings"
                )
        services[domain] = table
    return services


async def sync_services(
    conn: asyncpg.Connection, services: Services, *, source: str = "services file"
) -> list[ServiceChange]:
    """Make the filters of every domain in `services` equal to it, all or nothing."""
    changes: list[ServiceChange] = []
    try:
        async with conn.transaction():
            for domain, table in services.items():
                rows = await conn.fetch(
                    "SELECT service, action FROM lake.sync_services($1, $2::jsonb)",
                    domain,
                    orjson.dumps(table).decode(),
                )
                changes += [ServiceChange(domain, r["service"], r["action"]) for r in rows]
    except (asyncpg.InvalidParameterValueError, asyncpg.CheckViolationError) as exc:
        hint = f" ({exc.hint})" if getattr(exc, "hint", None) else ""
        raise ServiceFilterError(f"{source}: {exc.message}{hint}; nothing was changed") from None
    return changes


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    paths: list[str]
    rows: int


async def list_services(conn: asyncpg.Connection, domain: str) -> list[ServiceInfo]:
    """A domain's services (built-in ones first) with their paths and curated row counts."""
    counts = orjson.loads(await conn.fetchval("SELECT lake.layer_counts($1)", domain))["curated"]
    rows = await conn.fetch("SELECT service, paths FROM lake.service_filters($1)", domain)
    builtin = [
        ServiceInfo(name, ["/"], counts[name])
        for name in ("full", "active_terms")
        if name in counts
    ]
    return builtin + [
        ServiceInfo(r["service"], list(r["paths"]), counts.get(r["service"], 0)) for r in rows
    ]
