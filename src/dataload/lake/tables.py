"""The write path of tabular domains: Arrow record batches into PostgreSQL by binary COPY.

The rows travel as Arrow from the source to the server: each batch is cast to the table's
column types (conform.py), then sent by the ADBC PostgreSQL driver's bulk ingest (a binary COPY
made in C from the Arrow buffers: no Python object per row). The SQL that moves them into the
layers is set-based, in R__tables.sql.

- Facts (`load_facts`): one transaction per scope. The lake answers whether the scope's current
  version has the source's content hash (an identical file: nothing is read further, nothing
  stored); otherwise every batch of the scope streams through ONE COPY into a new version's own
  table, attached to raw at the end of the transaction. A crash at any point rolls it back whole;
  the version becomes current only when the run finishes (LoadRun.finish), atomically.
- Keyed (`load_keyed`): one transaction per batch: COPY into a temporary staging table, then
  `lake.table_merge` hashes the rows and stores the new and changed ones; raw's statement
  trigger brings xform up to date.

A run holds its domain's writer lock (load.py); every statement here checks that it still does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from dataload.lake.batch import Rejection
from dataload.lake.conform import Conformed, Conformer, SchemaChanges, as_arrow, shape_json
from dataload.lake.domains import TableLayout, load_domains

if TYPE_CHECKING:
    from dataload.domains.table import Table
    from dataload.lake.load import LoadRun

__all__ = ["TableLoad", "TableLoadResult"]

log = logging.getLogger("dataload.lake")

_LOGGED_REJECTIONS = 10


@dataclass
class TableLoadResult:
    offered: int = 0
    inserted: int = 0
    changed: int = 0
    unchanged: int = 0
    repeated: int = 0
    rejected: int = 0


class RejectionLimit(RuntimeError):
    """More rows were rejected than the domain allows: the scope's load was rolled back."""


class TableLoad:
    """A run's writes into its tabular domain, over an ADBC connection of its own."""

    def __init__(
        self,
        run: LoadRun,
        dsn: str,
        *,
        declared: Table | None = None,
        max_rejected_share: float | None = None,
    ) -> None:
        assert run.domain.table is not None, "a tabular domain"
        self.run = run
        self.layout: TableLayout = run.domain.table
        self._dsn = dsn
        self._declared = declared
        self._max_rejected_share = max_rejected_share
        aliases = {
            other: column.name
            for column in (declared.columns if declared else ())
            for other in column.source
        }
        required = {c.name for c in declared.columns if c.required} if declared else set()
        omit = {self.layout.scope_column} if self.layout.kind == "facts" else set()
        if self.layout.kind == "keyed":
            required |= set(run.domain.key_columns)
        self._conformer_options: dict[str, Any] = {
            "aliases": aliases,
            "required": required,
            "omit": omit,
            "keys": run.domain.key_columns if self.layout.kind == "keyed" else (),
        }
        self.conformer = Conformer(self.layout, **self._conformer_options)
        self.result = TableLoadResult()

    # -- facts ---------------------------------------------------------------------------------

    async def load_facts(
        self, scope: str, content_hash: str, batches: AsyncIterator[Any]
    ) -> TableLoadResult:
        """Load one scope's rows as a new version, unless the current one has `content_hash`."""
        async with self.run.pool.acquire() as conn:
            kept = await conn.fetchval(
                "SELECT lake.table_keep_version($1, $2, $3)", self.run.run_id, scope, content_hash
            )
            if kept:  # an identical file: not read further, nothing stored, no COPY opened
                row = await conn.fetchrow(
                    "SELECT offered, unchanged FROM lake.runs WHERE run_id = $1", self.run.run_id
                )
        if kept:
            await batches.aclose()
            self.result.offered, self.result.unchanged = row["offered"], row["unchanged"]
            log.info("%s %s: as its current version, nothing stored", self.run.domain.name, scope)
            return self.result
        first = await anext(batches, None)
        table = as_arrow(first) if first is not None else None
        if table is not None:
            await self._add_new_columns(table)
        loop = asyncio.get_running_loop()

        def more() -> pa.Table | None:
            item = asyncio.run_coroutine_threadsafe(anext(batches, None), loop).result()
            return None if item is None else as_arrow(item)

        try:
            await asyncio.to_thread(self._facts_transaction, scope, content_hash, table, more)
        finally:
            await batches.aclose()
        return self.result

    def _facts_transaction(
        self,
        scope: str,
        content_hash: str,
        first: pa.Table | None,
        more: Callable[[], pa.Table | None],
    ) -> None:
        import adbc_driver_postgresql.dbapi as adbc

        run_id = self.run.run_id
        with adbc.connect(self._dsn) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT version, leaf_schema, leaf_table FROM lake.table_begin_version($1, $2, $3)",
                (run_id, scope, content_hash),
            )
            version, leaf_schema, leaf_table = cur.fetchone()
            offered = 0
            rejections: list[Rejection] = []
            shapes: list[list[dict[str, Any]]] = []

            def conformed() -> Any:
                nonlocal offered
                table = first
                while table is not None:
                    part = self.conformer.conform(table, first_row=offered + 1)
                    offered += part.offered
                    rejections.extend(part.rejections)
                    shapes.append(part.shape)
                    yield from part.rows.to_batches()
                    table = more()

            schema = self.conformer.target_schema()
            reader = pa.RecordBatchReader.from_batches(schema, conformed())
            stored = cur.adbc_ingest(leaf_table, reader, mode="append", db_schema_name=leaf_schema)
            self._check_rejections(len(rejections), offered)
            cur.execute(
                "SELECT lake.table_end_version($1, $2, $3, $4, $5::jsonb)",
                (run_id, version, stored, len(rejections), _rejects_json(rejections)),
            )
            self._observe_shape(cur, offered, shapes)
            conn.commit()
        self.result.offered += offered
        self.result.inserted += stored
        self._note_rejections(rejections)

    # -- keyed ---------------------------------------------------------------------------------

    async def load_keyed(self, batches: AsyncIterator[Any]) -> TableLoadResult:
        """Load every batch the source yields, each in its own transaction."""
        import adbc_driver_postgresql.dbapi as adbc

        conn = await asyncio.to_thread(adbc.connect, self._dsn)
        try:
            async for item in batches:
                table = as_arrow(item)
                await self._add_new_columns(table)
                first_row = self.result.offered + 1  # rows of the run are numbered on
                part = await asyncio.to_thread(self.conformer.conform, table, first_row)
                await asyncio.to_thread(self._merge, conn, part)
        finally:
            await asyncio.to_thread(conn.close)
        return self.result

    def _merge(self, conn: Any, part: Conformed) -> None:
        domain = self.run.domain.name
        with conn.cursor() as cur:
            try:
                cur.execute("SELECT lake.table_staging($1)", (domain,))
                cur.adbc_ingest("staging", part.rows, mode="append", temporary=True)
                cur.execute(
                    "SELECT * FROM lake.table_merge($1, 'pg_temp.staging'::regclass)",
                    (self.run.run_id,),
                )
                _, inserted, changed, unchanged, repeated, clashed = cur.fetchone()
                rejected = len(part.rejections) + clashed
                self._check_rejections(
                    self.result.rejected + rejected, self.result.offered + part.offered
                )
                cur.execute(
                    "SELECT lake.record_counts($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
                    (
                        self.run.run_id,
                        part.offered,
                        inserted,
                        changed,
                        unchanged,
                        repeated,
                        rejected,
                        _rejects_json(part.rejections),
                    ),
                )
                self._observe_shape(cur, part.offered, [part.shape])
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        self.result.offered += part.offered
        self.result.inserted += inserted
        self.result.changed += changed
        self.result.unchanged += unchanged
        self.result.repeated += repeated
        self.result.rejected += clashed
        self._note_rejections(part.rejections)

    # -- both ----------------------------------------------------------------------------------

    async def _add_new_columns(self, table: pa.Table) -> None:
        """Columns the source brings beyond the table's: added (named in the run's summary),
        or, for a table declared with evolve=False, a failed run that names them."""
        new = self.conformer.new_columns(table)
        if not new:
            return
        name = self.run.domain.name
        if self._declared is not None and not self._declared.evolve:
            raise ValueError(
                f"{name}: the source brings columns the table does not have "
                f"({', '.join(sorted(new))}) and the table is declared evolve=False"
            )
        columns = [{"name": column, "type": kind} for column, kind in new.items()]
        async with self.run.pool.acquire() as conn:
            await conn.execute(
                "SELECT lake.table_add_columns($1, $2::jsonb)",
                name,
                orjson.dumps(columns).decode(),
            )
            layout = (await load_domains(conn))[name].table
        assert layout is not None
        changes = self.conformer.changes
        self.layout = layout
        self.conformer = Conformer(layout, **self._conformer_options)
        self.conformer.changes = changes
        changes.added.update(new)
        log.warning("%s: new columns in the source, added: %s", name, ", ".join(sorted(new)))

    async def record_schema_changes(self) -> list[str]:
        """Keep what the run found of its source's columns in the ledger; returns it."""
        changes: SchemaChanges = self.conformer.changes
        described = changes.describe()
        if described:
            async with self.run.pool.acquire() as conn:
                await conn.execute(
                    "SELECT lake.record_schema_changes($1, $2)", self.run.run_id, described
                )
        return described

    def _observe_shape(self, cur: Any, rows: int, shapes: list[list[dict[str, Any]]]) -> None:
        """What the source gave, for the run's shape and drift (in the load's transaction)."""
        if self.run.track_shapes and rows:
            cur.execute(
                "SELECT lake.observe_table_shape($1, $2::jsonb)",
                (self.run.run_id, shape_json(rows, shapes)),
            )

    def _check_rejections(self, rejected: int, offered: int) -> None:
        limit = self._max_rejected_share
        if limit is not None and offered and rejected / offered > limit:
            raise RejectionLimit(
                f"{self.run.domain.name}: {rejected} of {offered} rows were rejected "
                f"({rejected / offered:.1%}, above the domain's limit of {limit:.0%}); this load "
                "was rolled back, nothing of it was stored"
            )

    def _note_rejections(self, rejections: list[Rejection]) -> None:
        self.result.rejected += len(rejections)
        for rejection in rejections[:_LOGGED_REJECTIONS]:
            log.warning(
                "%s run %s: row rejected: %s",
                self.run.domain.name,
                self.run.run_id,
                rejection.reason,
            )


def _rejects_json(rejections: list[Rejection]) -> str:
    return orjson.dumps([{"reason": r.reason, "sample": r.sample} for r in rejections]).decode()
