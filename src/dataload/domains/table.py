"""The tabular shape of a domain: typed columns, a key or a scope, column-set services.

A document domain stores a JSON document per key. A tabular domain declares a `Table`: its
columns with PostgreSQL types, and either key columns (a keyed table: a row per key, a new
version when a row changes) or a scope column (facts without a key, such as taxi trips: a load
of a scope, a month, is one version that replaces the previous one whole). Its source yields
Arrow record batches (or tables, or lists of dicts for small sources); the lake casts them to
the declared types, rejecting what does not fit, and loads them by binary COPY.

Columns the source brings that the declaration lacks are added (their type from the Arrow
schema) and named in the run's summary, unless `evolve=False`; declared columns a source no
longer gives stay, null, and are named too. `Column.source` lists other names a source may
use for a column (names also match without regard to case: the TLC's `Airport_fee` of 2024
is the `airport_fee` of 2023).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Column", "ColumnService", "Table", "arrow_type", "sql_type_of"]

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TYPE = re.compile(
    r"^(smallint|integer|bigint|real|double precision|numeric\(\d{1,4}(,\d{1,4})?\)|text|boolean"
    r"|date|timestamp|timestamptz)$"
)
_NUMERIC = re.compile(r"^numeric\((\d+)(?:,(\d+))?\)$")


@dataclass(frozen=True)
class Column:
    """A typed column. `source`: other names it may have in the source (besides its own, in
    any case); `required`: a row without a value is rejected."""

    name: str
    type: str
    source: tuple[str, ...] = ()
    required: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"column {self.name!r}: use lower-case letters, digits and _")
        if not _TYPE.match(self.type):
            raise ValueError(
                f"column {self.name!r}: type {self.type!r} is not one a table may declare "
                "(smallint, integer, bigint, real, double precision, numeric(p,s), text, "
                "boolean, date, timestamp, timestamptz)"
            )


@dataclass(frozen=True)
class ColumnService:
    """What one consuming service reads: some columns, and the rows a predicate keeps (SQL
    over the columns, written with the domain: it becomes part of the service's view)."""

    columns: tuple[str, ...]
    where: str | None = None


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    #: Key columns of a keyed table; empty for facts.
    key: tuple[str, ...] = ()
    #: Facts: the column whose value is the unit of a version (a month); the run sets it.
    scope: str | None = None
    services: Mapping[str, ColumnService] = field(default_factory=dict)
    #: Add columns the source brings beyond the declaration (False: such a run fails).
    evolve: bool = True

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table columns repeat a name: {names}")
        if bool(self.key) == bool(self.scope):
            raise ValueError("a table has key columns (keyed) or a scope column (facts), not both")
        for name in (*self.key, *([self.scope] if self.scope else [])):
            if name not in names:
                raise ValueError(f"key or scope column {name!r} is not among the columns")
        for service, spec in self.services.items():
            if not _NAME.match(service) or service == "full":
                raise ValueError(f"service {service!r}: lower-case letters, digits and _")
            unknown = set(spec.columns) - set(names)
            if unknown:
                raise ValueError(f"service {service!r} reads unknown columns {sorted(unknown)}")

    @property
    def kind(self) -> str:
        return "keyed" if self.key else "facts"

    @property
    def key_columns(self) -> tuple[str, ...]:
        return self.key or (self.scope,)  # type: ignore[return-value]

    def column_json(self) -> list[dict[str, str]]:
        return [{"name": c.name, "type": c.type} for c in self.columns]

    def services_json(self) -> dict[str, Any]:
        return {
            name: {"columns": list(spec.columns), "where": spec.where}
            for name, spec in self.services.items()
        }


def arrow_type(sql_type: str) -> pa.DataType:
    """The Arrow type whose binary COPY form is that of a column of `sql_type`."""
    import pyarrow as pa

    if match := _NUMERIC.match(sql_type):
        return pa.decimal128(int(match[1]), int(match[2] or 0))
    types = {
        "smallint": pa.int16(),
        "integer": pa.int32(),
        "bigint": pa.int64(),
        "real": pa.float32(),
        "double precision": pa.float64(),
        "text": pa.string(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }
    return types[sql_type]


def sql_type_of(arrow: pa.DataType) -> str:
    """The column type for a column the source brought undeclared (text when unsure)."""
    import pyarrow as pa

    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_int8(arrow) or pa.types.is_int16(arrow) or pa.types.is_uint8(arrow):
        return "smallint"
    if pa.types.is_int32(arrow) or pa.types.is_uint16(arrow):
        return "integer"
    if pa.types.is_integer(arrow):
        return "bigint"
    if pa.types.is_float32(arrow):
        return "real"
    if pa.types.is_floating(arrow):
        return "double precision"
    if pa.types.is_decimal(arrow):
        return f"numeric({arrow.precision},{arrow.scale})"
    if pa.types.is_date(arrow):
        return "date"
    if pa.types.is_timestamp(arrow):
        return "timestamptz" if arrow.tz else "timestamp"
    return "text"
