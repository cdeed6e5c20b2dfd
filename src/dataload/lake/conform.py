"""Arrow batches cast to a tabular domain's columns: pure Arrow, no database.

A source's columns are matched to the table's by name (exactly, then by a declared other name,
then without regard to case); each is cast to the Arrow type whose binary COPY form is its
column's (domains/table.py). A value that does not fit (`abc` in a double column, 300 in a
smallint, 1.5 in a bigint) rejects its row, named by its place and key, with the column and
the reason but not the value (it may be personal): the column keeps its type, and the rest of
the batch goes on. Only a batch whose cast failed is looked at value
by value, to find its bad rows; every other batch is cast whole, in Arrow.

Columns the table lacks are new columns (`SchemaChanges.added`, their type from Arrow);
columns of the table the source does not give are filled with nulls (`missing`). What the
source gave is the batch's shape (`Conformed.shape`: each column's type as the source sent it
and how many rows had a value), which the lake compares with the last accepted one (drift).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dataload.domains.table import arrow_type, sql_type_of
from dataload.lake.batch import SAMPLE_CHARS, Rejection
from dataload.lake.domains import TableLayout

__all__ = ["Conformed", "Conformer", "SchemaChanges", "as_arrow"]

_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OverflowError)


def _normal(name: str) -> str:
    """A source's column name as a column name of ours: lower case, `_` for the rest."""
    return re.sub(r"[^a-z0-9_]+", "_", name.strip().lower()).strip("_") or "column"


@dataclass
class SchemaChanges:
    """Columns a source brought beyond the table, and the table's columns it lacked."""

    added: dict[str, str] = field(default_factory=dict)  # name -> SQL type
    missing: set[str] = field(default_factory=set)

    def describe(self) -> list[str]:
        return [
            f"column {name} ({kind}) is new in the source: added"
            for name, kind in self.added.items()
        ] + [f"column {name} is not in the source: stored null" for name in sorted(self.missing)]


@dataclass(frozen=True)
class Conformed:
    rows: pa.Table  # in the table's column order and types, without the omitted columns
    offered: int
    rejections: list[Rejection]
    #: What the source gave: [{"name": column, "type": its SQL type as sent, "records": rows
    #: with a value}], for the run's shape (lake.observe_table_shape).
    shape: list[dict[str, Any]] = field(default_factory=list)


def shape_json(rows: int, parts: list[list[dict[str, Any]]]) -> str:
    """The shape of several conformed parts, as lake.observe_table_shape takes it."""
    columns: dict[tuple[str, str], int] = {}
    for part in parts:
        for column in part:
            key = (column["name"], column["type"])
            columns[key] = columns.get(key, 0) + column["records"]
    listed = [{"name": n, "type": t, "records": c} for (n, t), c in columns.items()]
    return orjson.dumps({"rows": rows, "columns": listed}).decode()


def as_arrow(data: Any) -> pa.Table:
    """What a source yielded as an Arrow table: a record batch, a table, or a list of dicts
    (each column built on its own, as text when its values do not agree on a type)."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, dict):
        data = [data]
    names: dict[str, None] = {}
    for row in data:
        names.update(dict.fromkeys(row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in data]
        try:
            columns[name] = pa.array(values)
        except _CAST_ERRORS:
            columns[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(columns) if columns else pa.table({})


class Conformer:
    """Casts one domain's batches to its columns. `aliases`: other source names of columns
    (lower case -> column); `omit`: columns the lake fills itself (a facts table's scope)."""

    def __init__(
        self,
        layout: TableLayout,
        *,
        aliases: Mapping[str, str] | None = None,
        required: Iterable[str] = (),
        omit: Iterable[str] = (),
        keys: Iterable[str] = (),
    ) -> None:
        self.layout = layout
        self.aliases = {k.lower(): v for k, v in (aliases or {}).items()}
        self.required = set(required)
        self.keys = tuple(keys)  # a rejection names its row by them
        self.omit = set(omit)
        self.changes = SchemaChanges()

    @property
    def columns(self) -> list[tuple[str, str]]:
        return [(n, t) for n, t in self.layout.columns if n not in self.omit]

    def target_schema(self) -> pa.Schema:
        return pa.schema([(name, arrow_type(kind)) for name, kind in self.columns])

    def match(self, source_names: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
        """source name -> column, and of those the columns the table lacks (source -> name)."""
        own = {name for name, _ in self.layout.columns}
        by_lower = {name.lower(): name for name in own}
        mapping: dict[str, str] = {}
        new: dict[str, str] = {}
        for source in source_names:
            target = (
                source
                if source in own
                else self.aliases.get(source.lower()) or by_lower.get(source.lower())
            )
            if target is None:
                target = _normal(source)
                new[source] = target
            if target in mapping.values():
                raise ValueError(
                    f"the source gives two columns for {target!r}: "
                    f"{[s for s, t in mapping.items() if t == target] + [source]}"
                )
            mapping[source] = target
        return mapping, new

    def new_columns(self, data: pa.Table) -> dict[str, str]:
        """Columns of `data` the table lacks: name -> SQL type (from their Arrow types)."""
        _, new = self.match(data.column_names)
        return {target: sql_type_of(data.column(source).type) for source, target in new.items()}

    def conform(self, data: pa.Table, first_row: int = 1) -> Conformed:
        """The rows that fit the table's columns, and a rejection for each that does not, named
        by its row (numbered from `first_row`, its place in what the source gave) and key."""
        mapping, new = self.match(data.column_names)
        if new:  # the caller adds new columns (new_columns) before conforming
            raise ValueError(f"columns {sorted(new.values())} are not columns of the table")
        by_target = {target: source for source, target in mapping.items()}
        n = data.num_rows
        shape = [
            {
                "name": target,
                "type": _source_type(data.column(source).type),
                "records": n - data.column(source).null_count,
            }
            for source, target in mapping.items()
        ]
        bad: dict[int, str] = {}
        arrays = []
        for name, kind in self.columns:
            target = arrow_type(kind)
            source = by_target.get(name)
            if source is None:
                self.changes.missing.add(name)
                arrays.append(pa.nulls(n, target))
                continue
            column = data.column(source)
            arrays.append(self._cast(column, target, name, kind, bad))
            if name in self.required and column.null_count:
                for i in _positions(pc.is_null(column)):
                    bad.setdefault(i, f"column {name} is required and has no value")
        for name in self.omit & set(by_target):  # the lake fills these; a source may not
            raise ValueError(f"column {name} is set by the lake for this table, not the source")
        rows = pa.Table.from_arrays(arrays, schema=self.target_schema())
        rejections = []
        if bad:
            keep = pa.array([i not in bad for i in range(n)])
            keys = [by_target[k] for k in self.keys if k in by_target]
            rejections = [
                Rejection(f"row {first_row + i}: {reason}", _sample(data, i, first_row, keys))
                for i, reason in sorted(bad.items())
            ]
            rows = rows.filter(keep)
        return Conformed(rows, n, rejections, shape)

    @staticmethod
    def _cast(
        column: pa.ChunkedArray, target: pa.DataType, name: str, kind: str, bad: dict[int, str]
    ) -> pa.ChunkedArray:
        if column.type == target:
            return column
        if pa.types.is_nested(column.type) and pa.types.is_string(target):
            # A list or an object the table keeps as text: its JSON.
            return pa.chunked_array(
                [
                    pa.array(
                        [
                            None if v is None else orjson.dumps(v).decode()
                            for v in column.to_pylist()
                        ],
                        pa.string(),
                    )
                ]
            )
        # Timestamps: PostgreSQL keeps microseconds; finer units are cut, not refused.
        lossy = pa.types.is_timestamp(column.type) and pa.types.is_timestamp(target)
        try:
            return pc.cast(column, target, safe=not lossy)
        except _CAST_ERRORS:
            pass
        values = column.to_pylist()
        fitted: list[Any] = []
        for i, value in enumerate(values):
            if value is None:
                fitted.append(None)
                continue
            try:
                fitted.append(pa.array([value], column.type).cast(target)[0].as_py())
            except _CAST_ERRORS:  # the value is not shown: it may be anybody's data
                bad.setdefault(
                    i, f"column {name}: a {_source_type(column.type)} value that is not a {kind}"
                )
                fitted.append(None)
        return pa.chunked_array([pa.array(fitted, target)])


def _source_type(kind: pa.DataType) -> str:
    # A column with no value at all has no type to compare.
    return "null" if pa.types.is_null(kind) else sql_type_of(kind)


def _positions(mask: pa.ChunkedArray | pa.Array) -> list[int]:
    return [i for i, v in enumerate(mask.to_pylist()) if v]


def _sample(data: pa.Table, i: int, first_row: int, keys: list[str]) -> str:
    """What a rejection keeps of its row: where it was, its key, its columns' names and types;
    never its other values (DESIGN.md section 7)."""
    row = data.slice(i, 1)
    sample = {
        "row": first_row + i,
        "key": {name: row.column(name)[0].as_py() for name in keys},
        "columns": {name: _source_type(row.column(name).type) for name in row.column_names},
    }
    return orjson.dumps(sample, default=str).decode()[:SAMPLE_CHARS]
