"""Reading shapes back: a domain's current shape, its drift run by run, what a service receives,
its contract (for `dataload schema`). Queries only; the shapes are made by shape.py and
R__shapes.sql."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from dataload.lake.shape import service_path

__all__ = [
    "ContractRule",
    "RunShape",
    "ShapeEntry",
    "drop_contract",
    "read_contract",
    "read_history",
    "read_shape",
    "service_paths",
    "set_contract",
    "within",
]


@dataclass(frozen=True)
class ShapeEntry:
    path: str
    type: str
    records: int


@dataclass
class RunShape:
    run_id: int
    status: str
    started: datetime
    records: int
    accepted: bool
    entries: list[ShapeEntry] = field(default_factory=list)
    #: What the run said of its shape: drift, services affected, discarded values.
    changes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ContractRule:
    service: str  # '' for the domain's own
    path: str  # '' for every path of the service
    rule: str
    on_break: str


def within(path: str, top: str) -> bool:
    """Whether a shape path is `top` (a service filter's path) or below it."""
    plain = service_path(path)
    return top == "/" or plain == top or plain.startswith(top + "/")


_RUNS = """
    SELECT s.run_id, r.status, r.started, s.records, s.accepted,
           coalesce(x.schema_changes, '{}') AS changes
    FROM lake.run_shapes AS s
    JOIN lake.runs AS r USING (run_id)
    LEFT JOIN lake.run_details AS x USING (run_id)
    WHERE s.domain = $1
"""


async def read_shape(conn: asyncpg.Connection, domain: str) -> RunShape | None:
    """The shape of the domain's latest run that observed one, with its entries."""
    row = await conn.fetchrow(_RUNS + " ORDER BY s.run_id DESC LIMIT 1", domain)
    if row is None:
        return None
    shape = _run_shape(row)
    entries = await conn.fetch(
        "SELECT path, type, records FROM lake.run_shape_paths WHERE run_id = $1"
        ' ORDER BY path COLLATE "C", type',
        shape.run_id,
    )
    shape.entries = [ShapeEntry(e["path"], e["type"], e["records"]) for e in entries]
    return shape


async def read_history(conn: asyncpg.Connection, domain: str, limit: int = 30) -> list[RunShape]:
    """The domain's latest runs that observed a shape, oldest first, with what each said."""
    rows = await conn.fetch(_RUNS + " ORDER BY s.run_id DESC LIMIT $2", domain, limit)
    return [_run_shape(r) for r in reversed(rows)]


def _run_shape(row: asyncpg.Record) -> RunShape:
    return RunShape(
        row["run_id"],
        row["status"],
        row["started"],
        row["records"],
        row["accepted"],
        changes=list(row["changes"]),
    )


async def service_paths(conn: asyncpg.Connection, domain: str, service: str) -> list[str] | None:
    """A service's paths (a tabular domain's: its columns as /column); None: no such service."""
    if service == "full":
        return ["/"]
    if await conn.fetchval("SELECT lake.is_tabular($1)", domain):
        columns = await conn.fetchval(
            "SELECT columns FROM lake.table_services WHERE domain = $1 AND service = $2",
            domain,
            service,
        )
        return None if columns is None else [f"/{c}" for c in columns]
    paths = await conn.fetchval(
        "SELECT paths FROM lake.service_filters($1) WHERE service = $2", domain, service
    )
    return None if paths is None else list(paths)


async def read_contract(conn: asyncpg.Connection, domain: str) -> list[ContractRule]:
    rows = await conn.fetch(
        "SELECT service, path, rule, on_break FROM lake.shape_contracts WHERE domain = $1"
        " ORDER BY service, path, rule",
        domain,
    )
    return [ContractRule(r["service"], r["path"], r["rule"], r["on_break"]) for r in rows]


async def set_contract(
    conn: asyncpg.Connection, domain: str, service: str, path: str, rule: str, on_break: str
) -> None:
    await conn.execute(
        "SELECT lake.set_contract($1, $2, $3, $4, $5)", domain, service, path, rule, on_break
    )


async def drop_contract(conn: asyncpg.Connection, domain: str, service: str, path: str) -> int:
    """Let a path evolve again: drop its rules (the service's, or the domain's)."""
    result = await conn.execute(
        "DELETE FROM lake.shape_contracts WHERE domain = $1 AND service = $2 AND path = $3",
        domain,
        service,
        path,
    )
    return int(result.split()[-1])
