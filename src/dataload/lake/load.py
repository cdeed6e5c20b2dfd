"""The write path: load runs, batch by batch, into a domain's raw layer.

A batch is one transaction of a few round trips:
1. `lake.offer()` gets every key with its "exact" hash (md5 of the record's text, keys sorted),
   records the keys as seen by the run, and answers which records are not byte-for-byte their
   current version: a join against xform's primary key. Unchanged records stop here; their
   payload never travels.
2. For those, the canonical content hash is computed (canonical.py: object key order and array
   order do not matter) and `lake.differs()` says which really changed.
3. The new and changed records are COPYed (binary) into `<d>_raw.<d>_data`, a few hundred per
   statement; the statement-level trigger there propagates them to xform and curated,
   set-based, while the loader hashes the next few hundred.
4. `lake.record_batch()` adds the counts to the run ledger and keeps the rejected records.
A database error anywhere rolls the whole batch back: no layer shows any part of it.

`finish(complete=True)` declares the run a complete snapshot: keys it never offered are marked
deleted. `finish(complete=False)` and `fail()` never delete.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from dataload.lake.batch import PreparedBatch, prepare_batch
from dataload.lake.canonical import content_hash
from dataload.lake.domains import Domain, UnknownDomain, load_domains

__all__ = ["BatchResult", "Lake", "LakeError", "LoadRun", "RunSummary"]

log = logging.getLogger("dataload.lake")

_LOGGED_REJECTIONS = 10  # per batch; the ledger keeps them all
# Rows per COPY statement within a batch's transaction. Each statement fires the propagation
# trigger once (a few milliseconds of planning); smaller chunks overlap more of the Python
# hashing with PostgreSQL's work.
_COPY_CHUNK = 250


class LakeError(RuntimeError):
    """A load could not be written; the batch or run named in the message was rolled back."""


@dataclass(frozen=True)
class BatchResult:
    offered: int
    inserted: int
    changed: int
    unchanged: int
    rejected: int
    duration_s: float
    rejected_reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    domain: str
    status: str
    offered: int
    inserted: int
    changed: int
    unchanged: int
    deleted: int
    rejected: int
    started: datetime
    finished: datetime | None
    duration_s: float | None
    error: str | None = None
    rejected_reasons: list[str] = field(default_factory=list)


def _content_hashes(batch: PreparedBatch, positions: list[int]) -> dict[int, uuid.UUID]:
    return {i: content_hash(batch.records[i]) for i in positions}


class LoadRun:
    """One load of one domain; create it with `Lake.start_run`."""

    def __init__(self, pool: asyncpg.Pool, domain: Domain, run_id: int) -> None:
        self._pool = pool
        self.domain = domain
        self.run_id = run_id
        self._in_flight = 0

    async def load(self, records: Iterable[dict[str, Any]]) -> BatchResult:
        """Load one batch atomically; bad records are rejected, the rest loads."""
        started = time.perf_counter()
        # Serialising and hashing is CPU work: keep the event loop free meanwhile.
        batch = await asyncio.to_thread(prepare_batch, self.domain, records)
        self._in_flight += 1
        try:
            inserted, changed = await self._write(batch)
        except asyncpg.PostgresError as exc:
            raise LakeError(
                f"{self.domain.name} batch of {batch.offered} records (run {self.run_id}) failed "
                f"and was rolled back: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            self._in_flight -= 1
        self._log_rejections(batch)
        return BatchResult(
            offered=batch.offered,
            inserted=inserted,
            changed=changed,
            unchanged=batch.valid - inserted - changed,
            rejected=len(batch.rejections),
            duration_s=time.perf_counter() - started,
            rejected_reasons=sorted({r.reason for r in batch.rejections})[:5],
        )

    async def _write(self, batch: PreparedBatch) -> tuple[int, int]:
        """One transaction: detect changes, COPY them into raw, count; (inserted, changed)."""
        run_id = self.run_id
        async with self._pool.acquire() as conn, conn.transaction():
            candidates = await conn.fetch(
                "SELECT ord, is_new FROM lake.offer($1, $2::jsonb, $3::uuid[])",
                run_id,
                orjson.dumps(batch.keys).decode(),
                batch.exact_hashes,
            )
            new = [r["ord"] - 1 for r in candidates if r["is_new"]]
            known = [r["ord"] - 1 for r in candidates if not r["is_new"]]
            hashes = await asyncio.to_thread(_content_hashes, batch, known)
            changed: list[int] = []
            if known:
                differing = await conn.fetch(
                    "SELECT lake.differs($1, $2::jsonb, $3::uuid[])",
                    run_id,
                    orjson.dumps([batch.keys[i] for i in known]).decode(),
                    [hashes[i] for i in known],
                )
                changed = [known[r[0] - 1] for r in differing]
            await self._copy(conn, batch, sorted(new + changed), hashes)
            rejects = [{"reason": r.reason, "sample": r.sample} for r in batch.rejections]
            await conn.execute(
                "SELECT lake.record_batch($1, $2, $3, $4, $5, $6, $7::jsonb)",
                run_id,
                batch.offered,
                len(new),
                len(changed),
                batch.valid - len(new) - len(changed),
                len(batch.rejections),
                orjson.dumps(rejects).decode(),
            )
        return len(new), len(changed)

    async def _copy(
        self,
        conn: asyncpg.Connection,
        batch: PreparedBatch,
        positions: list[int],
        hashes: dict[int, uuid.UUID],
    ) -> None:
        """COPY these records into raw, in chunks: the content hashes of the next chunk are
        computed (Python) while the server propagates the current one (PostgreSQL)."""
        domain = self.domain
        chunks = [positions[i : i + _COPY_CHUNK] for i in range(0, len(positions), _COPY_CHUNK)]

        def hashed(chunk: list[int]) -> dict[int, uuid.UUID]:
            return _content_hashes(batch, [i for i in chunk if i not in hashes])

        upcoming = asyncio.ensure_future(asyncio.to_thread(hashed, chunks[0])) if chunks else None
        try:
            for n, chunk in enumerate(chunks):
                hashes.update(await upcoming)
                if n + 1 < len(chunks):
                    upcoming = asyncio.ensure_future(asyncio.to_thread(hashed, chunks[n + 1]))
                await conn.copy_records_to_table(
                    domain.raw_table,
                    schema_name=domain.raw_schema,
                    columns=[
                        *domain.key_columns,
                        domain.data_column,
                        "content_hash",
                        "exact_hash",
                        "run_id",
                    ],
                    records=[
                        (
                            *batch.keys[i],
                            batch.payloads[i],
                            hashes[i],
                            batch.exact_hashes[i],
                            self.run_id,
                        )
                        for i in chunk
                    ],
                )
        finally:
            if upcoming is not None and not upcoming.done():
                upcoming.cancel()
                await asyncio.gather(upcoming, return_exceptions=True)

    def _log_rejections(self, batch: PreparedBatch) -> None:
        for rejection in batch.rejections[:_LOGGED_REJECTIONS]:
            log.warning(
                "%s run %s: record rejected: %s; record starts %s",
                self.domain.name,
                self.run_id,
                rejection.reason,
                rejection.sample[:120],
            )
        if len(batch.rejections) > _LOGGED_REJECTIONS:
            log.warning(
                "%s run %s: %d more records rejected in this batch (see lake.rejected)",
                self.domain.name,
                self.run_id,
                len(batch.rejections) - _LOGGED_REJECTIONS,
            )

    async def load_stream(
        self, batches: AsyncIterable[list[dict[str, Any]]], *, concurrency: int = 1
    ) -> None:
        """Load every batch the iterable yields, up to `concurrency` at a time."""
        pending: set[asyncio.Task[BatchResult]] = set()
        try:
            async for records in batches:
                if len(pending) >= concurrency:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
                pending.add(asyncio.ensure_future(self.load(records)))
            for task in asyncio.as_completed(pending):
                await task
            pending = set()
        finally:
            for task in pending:
                task.cancel()

    async def finish(
        self, *, complete: bool, scope: Mapping[str, Sequence[str | int]] | None = None
    ) -> RunSummary:
        """End the run; `complete=True` marks keys this run never offered as deleted.

        `scope` limits those deletions to the part of the domain the snapshot covered, as
        key column -> values (the course flow: `{"term_code": [the terms it fetched]}`).
        """
        unknown = set(scope or ()) - set(self.domain.key_columns)
        if unknown:
            raise LakeError(
                f"snapshot scope names {sorted(unknown)}, not key columns of {self.domain.name} "
                f"({', '.join(self.domain.key_columns)})"
            )
        scope_json = (
            None
            if scope is None
            else orjson.dumps({k: [str(v) for v in vs] for k, vs in scope.items()}).decode()
        )
        if self._in_flight:
            raise LakeError(
                f"run {self.run_id} still has {self._in_flight} batches loading; "
                "wait for them before finishing it"
            )
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "SELECT lake.finish_run($1, $2, $3::jsonb)", self.run_id, complete, scope_json
                )
        except asyncpg.PostgresError as exc:
            raise LakeError(
                f"finishing {self.domain.name} run {self.run_id} failed and was rolled back: {exc}"
            ) from exc
        return await run_summary(self._pool, self.run_id)

    async def fail(self, reason: str) -> RunSummary:
        """End the run as failed: it deletes nothing; what its batches loaded stays."""
        try:
            async with self._pool.acquire() as conn:
                await conn.execute("SELECT lake.fail_run($1, $2)", self.run_id, reason)
        except asyncpg.PostgresError as exc:
            raise LakeError(f"marking {self.domain.name} run {self.run_id} failed: {exc}") from exc
        return await run_summary(self._pool, self.run_id)


async def run_summary(pool: asyncpg.Pool, run_id: int) -> RunSummary:
    async with pool.acquire() as conn:
        run = await conn.fetchrow("SELECT * FROM lake.runs WHERE run_id = $1", run_id)
        reasons = await conn.fetch(
            "SELECT reason, count(*) AS n FROM lake.rejected WHERE run_id = $1"
            " GROUP BY reason ORDER BY n DESC, reason LIMIT 5",
            run_id,
        )
    if run is None:
        raise LakeError(f"run {run_id} does not exist in lake.runs")
    finished = run["finished"]
    return RunSummary(
        run_id=run_id,
        domain=run["domain"],
        status=run["status"],
        offered=run["offered"],
        inserted=run["inserted"],
        changed=run["changed"],
        unchanged=run["unchanged"],
        deleted=run["deleted"],
        rejected=run["rejected"],
        started=run["started"],
        finished=finished,
        duration_s=(finished - run["started"]).total_seconds() if finished else None,
        error=run["error"],
        rejected_reasons=[f"{r['reason']} (x{r['n']})" for r in reasons],
    )


class Lake:
    """The lake seen from the flows: start load runs, ask what the layers hold."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._domains: dict[str, Domain] | None = None

    async def domain(self, name: str) -> Domain:
        if self._domains is None:
            async with self._pool.acquire() as conn:
                self._domains = await load_domains(conn)
        try:
            return self._domains[name]
        except KeyError:
            known = ", ".join(sorted(self._domains)) or "none (run `dataload db init`)"
            raise UnknownDomain(f"the lake has no domain {name!r}; it has {known}") from None

    async def start_run(
        self, domain: str, *, flow: str | None = None, flow_run_id: str | None = None
    ) -> LoadRun:
        spec = await self.domain(domain)
        async with self._pool.acquire() as conn:
            run_id = await conn.fetchval(
                "SELECT run_id FROM lake.start_run($1, $2, $3)", domain, flow, flow_run_id
            )
        return LoadRun(self._pool, spec, run_id)

    async def active_term_codes(self) -> list[str]:
        async with self._pool.acquire() as conn:
            return [r[0] for r in await conn.fetch("SELECT lake.active_term_codes()")]

    async def current_count(self, domain: str) -> int:
        """Live (not deleted) records in the domain's xform layer."""
        spec = await self.domain(domain)
        async with self._pool.acquire() as conn:
            return await conn.fetchval(
                "SELECT (lake.layer_counts($1) ->> 'xform_live')::bigint", spec.name
            )

    async def layer_counts(self, domain: str) -> dict[str, Any]:
        """{'raw': n, 'xform_live': n, 'xform_deleted': n, 'curated': {service: n}}."""
        spec = await self.domain(domain)
        async with self._pool.acquire() as conn:
            return orjson.loads(await conn.fetchval("SELECT lake.layer_counts($1)", spec.name))
