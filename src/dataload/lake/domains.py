"""The lake's domains (term, course, person) as the database describes them in lake.domains.

The migrations are the one place where a domain's key is defined; Python reads it from there.
Table names follow the public contract of DESIGN.md section 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import orjson

__all__ = ["Domain", "TableLayout", "UnknownDomain", "load_domains"]


class UnknownDomain(LookupError):
    """A domain name the lake does not hold."""


@dataclass(frozen=True)
class TableLayout:
    """A tabular domain as the lake holds it (lake.tables): its columns may have grown since
    it was declared."""

    kind: str  # 'keyed' or 'facts'
    columns: tuple[tuple[str, str], ...]  # (name, SQL type), in table order
    scope_column: str | None = None


@dataclass(frozen=True)
class Domain:
    name: str
    key_columns: tuple[str, ...]
    key_types: tuple[str, ...]  # 'text' or 'bigint'
    key_fields: tuple[str, ...]  # payload field of each key column
    #: Field names never stored, at any depth, without regard to case; "finAid*" is a prefix.
    never_store: tuple[str, ...] = ()
    #: The tabular shape; None for a domain of documents.
    table: TableLayout | None = None

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
        "SELECT d.domain, d.key_columns, d.key_types, d.key_fields, d.never_store,"
        " t.kind, t.columns::text AS columns, t.scope_column"
        " FROM lake.domains AS d LEFT JOIN lake.tables AS t USING (domain) ORDER BY domain"
    )
    return {
        r["domain"]: Domain(
            r["domain"],
            tuple(r["key_columns"]),
            tuple(r["key_types"]),
            tuple(r["key_fields"]),
            tuple(r["never_store"]),
            _layout(r),
        )
        for r in rows
    }


def _layout(row: asyncpg.Record) -> TableLayout | None:
    if row["kind"] is None:
        return None
    columns = tuple((c["name"], c["type"]) for c in orjson.loads(row["columns"]))
    return TableLayout(row["kind"], columns, row["scope_column"])
