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
    "seed_services",
    "sync_services",
]

Services = dict[str, dict[str, list[str]]]
_SYNC_LOCK_KEY = 0x6C616B655F737663  # "lake_svc"


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
    conn: asyncpg.Connection,
    services: Services,
    *,
    source: str = "services file",
    only_where_empty: bool = False,
) -> list[ServiceChange]:
    """Make the filters of every domain in `services` equal to it, all or nothing.

    With `only_where_empty`, domains that already have services are left alone. Concurrent
    syncs take turns (a transaction-level advisory lock).
    """
    changes: list[ServiceChange] = []
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _SYNC_LOCK_KEY)
            for domain, table in services.items():
                if only_where_empty and await conn.fetchval(
                    "SELECT count(*) > 0 FROM lake.service_filters($1)", domain
                ):
                    continue
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
    """A domain's services (built-in ones first) with their paths and curated row counts; for
    a tabular domain, each service's columns and its row filter."""
    counts = orjson.loads(await conn.fetchval("SELECT lake.layer_counts($1)", domain))["curated"]
    if await conn.fetchval("SELECT lake.is_tabular($1)", domain):
        rows = await conn.fetch(
            "SELECT service, columns, row_filter FROM lake.table_services WHERE domain = $1"
            " ORDER BY service",
            domain,
        )
        return [
            ServiceInfo(
                r["service"],
                [*r["columns"], *([f"WHERE {r['row_filter']}"] if r["row_filter"] else [])],
                counts.get(r["service"], 0),
            )
            for r in rows
        ]
    rows = await conn.fetch("SELECT service, paths FROM lake.service_filters($1)", domain)
    builtin = [
        ServiceInfo(name, ["/"], counts[name])
        for name in ("full", "active_terms")
        if name in counts
    ]
    return builtin + [
        ServiceInfo(r["service"], list(r["paths"]), counts.get(r["service"], 0)) for r in rows
    ]


async def seed_services(conn: asyncpg.Connection, path: Path | None = None) -> list[ServiceChange]:
    """Give each domain that has no services yet the ones of the services file.

    A fresh lake then has useful curated services at once; a lake whose services were set up
    (by `dataload services sync` or by hand) is left alone.
    """
    source = str(path or default_services_file())
    return await sync_services(conn, read_services(path), source=source, only_where_empty=True)
