"""The lake's domains (term, course, person) as the database describes them in lake.domains.

The migrations are the one place where a domain's key is defined; Python reads it from there.
Table names follow the public contract of DESIGN.md section 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

__all__ = ["Domain", "UnknownDomain", "load_domains"]


class UnknownDomain(LookupError):
    """A domain name the lake does not hold."""


@dataclass(frozen=True)
class Domain:
    name: str
    key_columns: tuple[str, ...]
    key_types: tuple[str, ...]  # 'text' or 'bigint'
    key_fields: tuple[str, ...]  # payload field of each key column
    #: Field names never stored, at any depth, without regard to case; "finAid*" is a prefix.
    never_store: tuple[str, ...] = ()

    @property
    def data_column(self) -> str:
        return f"{self.name}_data"

    @property
    def raw_schema(self) -> str:
        return f"{self.name}_raw"

    @property
    def raw_table(self) -> str:
        return f"{self.name}_data"


async def load_domains(conn: asyncpg.Connection) -> dict[str, Domain]:
    rows = await conn.fetch(
        "SELECT domain, key_columns, key_types, key_fields, never_store"
        " FROM lake.domains ORDER BY domain"
    )
    return {
        r["domain"]: Domain(
            r["domain"],
            tuple(r["key_columns"]),
            tuple(r["key_types"]),
            tuple(r["key_fields"]),
            tuple(r["never_store"]),
        )
        for r in rows
    }
