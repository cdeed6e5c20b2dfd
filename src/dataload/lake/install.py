"""Installing declared domains: their schemas, tables, triggers and services, from Python.

The SQL that builds a domain's three layers is written once (`lake.install_domain`: V0005's
layers, V0012's never-store fields, V0013's row-level security on curated); a domain declared
in Python is installed by calling it with the declaration's keys and never-store fields,
the first time `dataload db init` (or a flow) sees a domain the lake does not have. A domain
already in lake.domains is left as it is: its services may have been changed on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg
import orjson

from dataload.lake.filters import sync_services

if TYPE_CHECKING:
    from dataload.domains.table import Table

__all__ = ["DomainTables", "install_domains"]

# Any constant of our own: concurrent inits install a domain once.
_INSTALL_LOCK_KEY = 0x6C616B655F696E73  # "lake_ins"


@dataclass(frozen=True)
class DomainTables:
    """What the lake needs of a declaration: the name, the keys, services, never-store fields."""

    name: str
    key_columns: tuple[str, ...]
    key_types: tuple[str, ...]
    key_fields: tuple[str, ...]
    services: Mapping[str, Sequence[str]] = field(default_factory=dict)
    never_store: tuple[str, ...] = ()
    #: A tabular domain's shape (lake.install_table); None for documents.
    table: Table | None = None


async def install_domains(conn: asyncpg.Connection, domains: Iterable[DomainTables]) -> list[str]:
    """Install every domain the lake does not have yet, with its services, all or nothing;
    returns their names."""
    domains = list(domains)
    installed: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _INSTALL_LOCK_KEY)
        present = {r[0] for r in await conn.fetch("SELECT domain FROM lake.domains")}
        for domain in domains:
            if domain.name in present:
                continue
            if domain.table is not None:
                await _install_table(conn, domain.name, domain.table)
                installed.append(domain.name)
                continue
            await conn.execute(
                "SELECT lake.install_domain($1, $2, $3, $4, never_store => $5)",
                domain.name,
                list(domain.key_columns),
                list(domain.key_types),
                list(domain.key_fields),
                list(domain.never_store),
            )
            await conn.execute("SELECT lake.compile_walker($1)", domain.name)
            if domain.services:  # in the same transaction: a bad path installs nothing
                services = {name: list(paths) for name, paths in domain.services.items()}
                await sync_services(conn, {domain.name: services}, source=f"domain {domain.name}")
            installed.append(domain.name)
    return installed


async def _install_table(conn: asyncpg.Connection, name: str, table: Table) -> None:
    """A tabular domain's layers (R__tables.sql) and its column-set services."""
    await conn.execute(
        "SELECT lake.install_table($1, $2, $3, $4::jsonb, $5)",
        name,
        table.kind,
        list(table.key),
        orjson.dumps(table.column_json()).decode(),
        table.scope,
    )
    await conn.execute(
        "SELECT lake.table_define_services($1, $2::jsonb)",
        name,
        orjson.dumps(table.services_json()).decode(),
    )
