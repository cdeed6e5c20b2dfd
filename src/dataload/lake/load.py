"""The write path: load runs, batch by batch, into a domain's raw layer.

A batch is one transaction of a few round trips:
1. `lake.offer()` gets every key with its "exact" hash (md5 of the record's text as given, keys
   sorted, never-store fields included), records the keys as seen by the run, and answers which
   records are not byte-for-byte the text their current version was stored from: a join
   against xform's primary key. Unchanged records stop here; their payload never travels. The
   stored exact hash is that of the text as given, before never-store fields were stripped, so
   a source that always sends them costs no more on a reload than one that never does. The
   lake computed it itself, from the text it was sent (step 3): no hash is taken on the
   loader's word where it decides what is unchanged.
2. The others are stripped of never-store fields and their canonical content hash is computed
   (canonical.py: object key order and array order do not matter), with their shape.
3. They are COPYed (binary) into `<d>_raw.<d>_data` as the text given, a few hundred per
   statement: raw's row trigger hashes that text, parses and strips it, and skips a record
   whose content equals its current version's (only remembering the text's hash); the
   statement-level trigger propagates the rest to xform and curated, set-based, while the
   loader hashes the next few hundred. `lake.stored()` then says which records raw kept.
4. `lake.record_counts()` adds the counts to the run ledger and keeps the rejected records.
A record the run offered before (an earlier batch, or earlier in the batch) is a repeat when it
is the same, stored once and counted as repeated; with other content it is rejected.
A database error anywhere rolls the whole batch back: no layer shows any part of it.

A run holds its domain's writer lock (a PostgreSQL advisory lock) on a connection of its own,
from `Lake.start_run` to `finish` or `fail`: one writer per domain, released by PostgreSQL when
the process dies. Each batch and the finish check that the lock is still held on the same server
incarnation, so a run that outlived a database crash can neither load nor delete.

`finish(complete=True)` declares the run a complete snapshot: live keys it neither loaded nor
listed (`list_keys`, for a listing that comes apart from the records) are marked deleted, unless
a listed key was never loaded (the run ends partial) or the deletions would exceed the
mass-deletion guard (it ends guarded); then nobody is deleted. `finish(complete=False)` and
`fail()` never delete. Every way a run ends keeps the batches it committed.

A failed or abandoned run also keeps the keys it saw, until the next run starts: one started
with `resume=True` (within a freshness window) adopts them, so that `pending_keys()` are only
the listed keys nobody loaded yet and its listing is the union of both. Other processes may
load into a running run (`Lake.join_run`, the shards of a split run), each its own disjoint
share of the pending keys; their batches are refused once the run's starter lost its lock, and
only the starter finishes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from dataload.lake.batch import PreparedBatch, prepare_batch
from dataload.lake.canonical import NotCanonicalisable
from dataload.lake.content import ContentRules
from dataload.lake.domains import Domain, UnknownDomain, load_domains
from dataload.lake.shape import BatchShapes, RunShapes

__all__ = [
    "DEFAULT_MAX_DELETE_SHARE",
    "DEFAULT_RESUME_WINDOW_S",
    "BatchResult",
    "Lake",
    "LakeError",
    "LoadRun",
    "RejectionLimit",
    "RunSummary",
    "WriterBusy",
]

log = logging.getLogger("dataload.lake")

_LOGGED_REJECTIONS = 10  # per batch; the ledger keeps them all
# Rows per COPY statement within a batch's transaction. Each statement fires the propagation
# trigger once (a few milliseconds of planning); smaller chunks overlap more of the Python
# hashing with PostgreSQL's work.
_COPY_CHUNK = 250
#: Keys per statement when a run declares its listing.
_LIST_CHUNK = 20_000
#: A complete run that would delete more than this share of the live keys of its scope deletes
#: nobody and ends guarded.
DEFAULT_MAX_DELETE_SHARE = 0.05
#: How old the work of a failed run may be for a run to resume it rather than start over.
DEFAULT_RESUME_WINDOW_S = 24 * 3600.0


class LakeError(RuntimeError):
    """A load could not be written; the batch or run named in the message was rolled back."""


class WriterBusy(LakeError):
    """Another run of the domain is loading: one writer per domain."""


class RejectionLimit(LakeError):
    """The run rejected more than its domain allows: the batch was rolled back."""


@dataclass(frozen=True)
class BatchResult:
    offered: int
    inserted: int
    changed: int
    unchanged: int
    rejected: int
    duration_s: float
    rejected_reasons: list[str] = field(default_factory=list)
    #: Records given again, identical, in the batch or after an earlier batch: stored once.
    repeated: int = 0


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
    #: Keys of the listing the run declared (None: its records were its listing).
    listed: int | None = None
    #: Listed keys the run never loaded, and a few of them.
    missing: int = 0
    missing_sample: list[str] = field(default_factory=list)
    #: What the run did, in one sentence ("stored 3 new and 5 changed records, deleted nobody:
    #: ...").
    outcome: str | None = None
    #: The failed or abandoned run this one resumed, and the keys that one had loaded.
    resumed_from: int | None = None
    carried: int = 0
    #: Records the source gave again, identical, within the run: stored once.
    repeated: int = 0
    #: Tabular domains: columns the run added, or found missing in the source.
    schema_changes: list[str] = field(default_factory=list)


def _content_hashes(
    batch: PreparedBatch, positions: list[int], shapes: BatchShapes
) -> dict[int, uuid.UUID | None]:
    """The content hash of each record (and its shape, from the same walk, when shapes are
    tracked); None for one refused (NaN, infinity: see canonical)."""
    hashes: dict[int, uuid.UUID | None] = {}
    for i in positions:
        try:
            hashes[i] = shapes.content_hash(i)
        except NotCanonicalisable as exc:
            batch.refuse(i, f"content refused: {exc}")
            hashes[i] = None
    return hashes


class LoadRun:
    """One load of one domain; create it with `Lake.start_run`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        domain: Domain,
        run_id: int,
        writer: asyncpg.Connection | None,
        *,
        resumed_from: int | None = None,
        carried: int = 0,
        track_shapes: bool = True,
    ) -> None:
        """`writer` holds the domain's writer lock; None for a shard that joined the run of
        another process (`Lake.join_run`): it loads, its parent finishes. `track_shapes`: keep
        the shape of what the run loads, and its drift (shape.py); off only to measure it."""
        self._pool = pool
        self.domain = domain
        self.run_id = run_id
        self._writer = writer
        self.joined = writer is None
        #: The failed or abandoned run this one resumed, and how many keys that one had loaded.
        self.resumed_from = resumed_from
        self.carried = carried
        self._rules = ContentRules(domain.never_store)
        self.track_shapes = track_shapes
        self.shapes = RunShapes(domain.name, enabled=track_shapes and domain.table is None)
        #: Above this share of rejected records (contracts' included) a batch is rolled back
        #: and the run stops; None: no limit.
        self.max_rejected_share: float | None = None
        self._offered = self._rejected = 0
        self._in_flight = 0
        # Keys of the batches being written: a batch holding one of them waits, or both would
        # find the key absent (or unchanged) and insert the same version twice.
        self._keys_writing: set[tuple[Any, ...]] = set()
        self._keys_released = asyncio.Condition()

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def load(self, records: Iterable[dict[str, Any]]) -> BatchResult:
        """Load one batch atomically; bad records are rejected, the rest loads."""
        started = time.perf_counter()
        # The run's contract (shape.py) is read, once, while the first batch is prepared.
        contract = asyncio.ensure_future(self.shapes.prepare(self._pool))
        try:
            # Serialising and hashing is CPU work: keep the event loop free meanwhile.
            batch = await asyncio.to_thread(prepare_batch, self.domain, records)
        except BaseException:
            contract.cancel()
            await asyncio.gather(contract, return_exceptions=True)
            raise
        self._in_flight += 1
        keys = set(batch.keys)
        try:
            await contract
            async with self._keys_released:
                await self._keys_released.wait_for(lambda: self._keys_writing.isdisjoint(keys))
                self._keys_writing |= keys
            try:
                inserted, changed, repeated = await self._write(batch)
            finally:
                async with self._keys_released:
                    self._keys_writing -= keys
                    self._keys_released.notify_all()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
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
            unchanged=batch.valid - inserted - changed - repeated,
            repeated=batch.repeated + repeated,
            rejected=len(batch.rejections),
            duration_s=time.perf_counter() - started,
            rejected_reasons=sorted({r.reason for r in batch.rejections})[:5],
        )

    async def _write(self, batch: PreparedBatch) -> tuple[int, int, int]:
        """One transaction: detect changes, COPY them into raw, count; (inserted, changed,
        repeated after an earlier batch)."""
        run_id = self.run_id
        shapes = self.shapes.batch(batch)
        async with self._pool.acquire() as conn, conn.transaction():
            candidates = await conn.fetch(
                "SELECT ord, is_new, again FROM lake.offer($1, $2::jsonb, $3::uuid[])",
                run_id,
                orjson.dumps(batch.keys).decode(),
                batch.exact_hashes,
            )
            new = [r["ord"] - 1 for r in candidates if r["is_new"]]
            known = [r["ord"] - 1 for r in candidates if not r["is_new"]]
            # Keys an earlier batch of this run stored: the same content is a repeat, other
            # content a conflict (which of the two is right, nothing says).
            again = {r["ord"] - 1 for r in candidates if r["again"] and not r["is_new"]}
            # Only records whose text differs from the text their stored version came from are
            # hashed and shaped (an identical resend stopped at lake.offer); stripped first, as
            # raw will store them.
            await asyncio.to_thread(batch.strip, new + known, self._rules)
            if self.shapes.contract is not None:  # judged before they are compared and stored
                await asyncio.to_thread(shapes.enforce, new + known)
            new = [i for i in new if batch.exact_hashes[i] is not None]
            known = [i for i in known if batch.exact_hashes[i] is not None]
            repeats = [i for i in known if i in again]
            hashes = await asyncio.to_thread(_content_hashes, batch, repeats, shapes)
            repeats = [i for i in repeats if hashes[i] is not None]
            conflicts: list[int] = []
            if repeats:
                differing = await conn.fetch(
                    "SELECT lake.differs($1, $2::jsonb, $3::uuid[])",
                    run_id,
                    orjson.dumps([batch.keys[i] for i in repeats]).decode(),
                    [hashes[i] for i in repeats],
                )
                conflicts = [repeats[r[0] - 1] for r in differing]
            for i in conflicts:
                batch.refuse(i, f"key {batch.keys[i]} offered again in this run with other content")
            repeated = len(repeats) - len(conflicts)
            # The others are sent; raw's row trigger keeps those whose content changed.
            sent = await self._copy(
                conn, batch, sorted(new + [i for i in known if i not in again]), hashes, shapes
            )
            stored: set[int] = set()
            if sent:
                kept_rows = await conn.fetch(
                    "SELECT lake.stored($1, $2::jsonb)",
                    run_id,
                    orjson.dumps([batch.keys[i] for i in sent]).decode(),
                )
                stored = {sent[r[0] - 1] for r in kept_rows}
            inserted = len(stored.intersection(new))
            changed = len(stored) - inserted
            kept = await shapes.keep(conn, sorted(stored), hashes)
            self._check_rejected(batch)
            rejects = [{"reason": r.reason, "sample": r.sample} for r in batch.rejections]
            await conn.execute(
                "SELECT lake.record_counts($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
                run_id,
                batch.offered,
                inserted,
                changed,
                batch.valid - inserted - changed - repeated,
                batch.repeated + repeated,
                len(batch.rejections),
                orjson.dumps(rejects).decode(),
            )
        shapes.committed(kept)
        self._offered += batch.offered
        self._rejected += len(batch.rejections)
        return inserted, changed, repeated

    def _check_rejected(self, batch: PreparedBatch) -> None:
        limit = self.max_rejected_share
        offered = self._offered + batch.offered
        rejected = self._rejected + len(batch.rejections)
        if limit is not None and offered and rejected / offered > limit:
            raise RejectionLimit(
                f"{self.domain.name} run {self.run_id}: {rejected:,} of {offered:,} records were "
                f"rejected ({rejected / offered:.1%}, above the domain's limit of {limit:.0%}); "
                f"this batch was rolled back ({', '.join(sorted({r.reason for r in batch.rejections})[:3])})"
            )

    async def _copy(
        self,
        conn: asyncpg.Connection,
        batch: PreparedBatch,
        positions: list[int],
        hashes: dict[int, uuid.UUID | None],
        shapes: BatchShapes,
    ) -> list[int]:
        """COPY these records into raw, in chunks, and return the positions sent: the content
        hashes and shapes (one walk, shape.hashed_shape) of the next chunk are computed (Python)
        while the server propagates the current one (PostgreSQL). A record whose hash cannot be
        computed is refused (`batch.refuse`), not sent. Each record goes as the text it was
        given (`given_text`): raw parses, strips and hashes it (lake.compile_raw_trigger)."""
        domain = self.domain
        chunks = [positions[i : i + _COPY_CHUNK] for i in range(0, len(positions), _COPY_CHUNK)]
        sent: list[int] = []

        def hashed(chunk: list[int]) -> dict[int, uuid.UUID | None]:
            return _content_hashes(batch, [i for i in chunk if i not in hashes], shapes)

        upcoming = asyncio.ensure_future(asyncio.to_thread(hashed, chunks[0])) if chunks else None
        try:
            for n, chunk in enumerate(chunks):
                hashes.update(await upcoming)
                if n + 1 < len(chunks):
                    upcoming = asyncio.ensure_future(asyncio.to_thread(hashed, chunks[n + 1]))
                chunk = [i for i in chunk if hashes[i] is not None]
                if not chunk:
                    continue
                await conn.copy_records_to_table(
                    domain.raw_table,
                    schema_name=domain.raw_schema,
                    columns=[*domain.key_columns, "given_text", "content_hash", "run_id"],
                    records=[
                        (*batch.keys[i], batch.payloads[i], hashes[i], self.run_id) for i in chunk
                    ],
                )
                sent += chunk
        finally:
            if upcoming is not None and not upcoming.done():
                upcoming.cancel()
                await asyncio.gather(upcoming, return_exceptions=True)
        return sent

    def _log_rejections(self, batch: PreparedBatch) -> None:
        for rejection in batch.rejections[:_LOGGED_REJECTIONS]:
            log.warning(
                "%s run %s: record rejected: %s; the record: %s",
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

    async def list_keys(self, keys: Iterable[Any]) -> int:
        """Declare keys of the run's complete listing, when it comes apart from the records (the
        person ids of PeopleSoft, SAP and VDS): a listed key the run never loads is missing, so
        the run ends partial and deletes nobody. A key is a tuple of the key columns' values, or
        the value alone for a one-column key. Returns how many keys were declared."""
        keys = iter(keys)
        declared = 0
        try:
            while True:  # a chunk at a time: a large listing is never copied whole
                rows = [
                    list(k) if isinstance(k, tuple | list) else [k]
                    for k in itertools.islice(keys, _LIST_CHUNK)
                ]
                async with self._pool.acquire() as conn:
                    declared += await conn.fetchval(
                        "SELECT lake.list_keys($1, $2::jsonb)",
                        self.run_id,
                        orjson.dumps(rows).decode(),
                    )
                if len(rows) < _LIST_CHUNK:
                    break
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise LakeError(
                f"declaring the listing of {self.domain.name} run {self.run_id} failed: {exc}"
            ) from exc
        return declared

    async def pending_keys(self, *, shard: int = 0, shards: int = 1) -> list[Any]:
        """The listed keys this run has not loaded yet (a resumed run: those its predecessor did
        not load either), sorted; with `shards` > 1, the share of shard `shard` (0-based) of a
        split by key hash. A key is its value for a one-column key, else a tuple."""
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT lake.pending_keys($1, $2, $3)::text", self.run_id, shard, shards
                )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise LakeError(
                f"reading the keys {self.domain.name} run {self.run_id} has still to load "
                f"failed: {exc}"
            ) from exc
        keys = [orjson.loads(row[0]) for row in rows]
        if len(self.domain.key_columns) == 1:
            return [key[0] for key in keys]
        return [tuple(key) for key in keys]

    async def offered(self) -> int:
        """Records the run's committed batches offered so far, whichever process wrote them."""
        async with self._pool.acquire() as conn:
            return await conn.fetchval(
                "SELECT offered FROM lake.runs WHERE run_id = $1", self.run_id
            )

    async def finish(
        self,
        *,
        complete: bool,
        scope: Mapping[str, Sequence[str | int]] | None = None,
        allow_mass_delete: bool = False,
        max_delete_share: float = DEFAULT_MAX_DELETE_SHARE,
        incomplete: str | None = None,
    ) -> RunSummary:
        """End the run; `complete=True` marks live keys this run neither loaded nor listed as
        deleted, unless it listed keys it never loaded (partial) or the deletions would exceed
        `max_delete_share` of the live keys of its scope (guarded, unless `allow_mass_delete`).

        `scope` limits those deletions to the part of the domain the snapshot covered, as
        key column -> values (the course flow: `{"term_code": [the terms it fetched]}`).
        `incomplete` says why a run that is not a complete snapshot is not (the ledger keeps it).
        """
        await self._check_writer()
        try:
            await self._finish(complete, scope, allow_mass_delete, max_delete_share, incomplete)
        finally:
            # Finished or not, the run lets go of the domain: one that could not finish can
            # only fail now (a later run marks it abandoned if nobody does).
            await self._release_writer()
        return await run_summary(self._pool, self.run_id)

    async def _finish(
        self,
        complete: bool,
        scope: Mapping[str, Sequence[str | int]] | None,
        allow_mass_delete: bool,
        max_delete_share: float,
        incomplete: str | None,
    ) -> None:
        assert self._writer is not None
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
        if allow_mass_delete:
            log.warning(
                "%s run %s may delete any share of the live records (mass deletion allowed)",
                self.domain.name,
                self.run_id,
            )
        try:
            async with self._writer.transaction():
                # The same rules, written once per shape: documents, or typed tables.
                finish = "finish_table_run" if self.domain.table else "finish_run"
                await self._writer.execute(
                    f"SELECT lake.{finish}($1, $2, $3::jsonb, $4, $5)",
                    self.run_id,
                    complete,
                    scope_json,
                    None if allow_mass_delete else max_delete_share,
                    incomplete,
                )
                await self._observe_shape()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise LakeError(
                f"finishing {self.domain.name} run {self.run_id} failed and was rolled back, "
                f"nothing was deleted: {exc}"
            ) from exc

    async def finish_incremental(self, *, cursor: str | None = None) -> RunSummary:
        """End an incremental run: it stored what changed and deletes nobody (status
        'incremental'). `cursor`, where it stopped, is kept for the next run in the same
        transaction (None: the cursor stays where it was)."""
        await self._check_writer()
        try:
            if self._in_flight:
                raise LakeError(
                    f"run {self.run_id} still has {self._in_flight} batches loading; "
                    "wait for them before finishing it"
                )
            async with self._writer.transaction():
                await self._writer.execute(
                    "SELECT lake.finish_incremental($1, $2)", self.run_id, cursor
                )
                await self._observe_shape()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise LakeError(
                f"finishing {self.domain.name} run {self.run_id} failed and was rolled back: {exc}"
            ) from exc
        finally:
            await self._release_writer()
        return await run_summary(self._pool, self.run_id)

    async def fail(self, reason: str) -> RunSummary:
        """End the run as failed: it deletes nothing; what its batches loaded stays, and the
        keys it saw, for a run that resumes it."""
        if self.joined:
            raise LakeError(self._joined_cannot("fail"))
        await self._release_writer()
        try:
            async with self._pool.acquire() as conn:
                await conn.execute("SELECT lake.fail_run($1, $2)", self.run_id, reason)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise LakeError(f"marking {self.domain.name} run {self.run_id} failed: {exc}") from exc
        return await run_summary(self._pool, self.run_id)

    async def _observe_shape(self) -> None:
        """The shape of what the run loaded, and its drift (R__shapes.sql), kept with the run
        as it finishes, in the same transaction."""
        if self.track_shapes:
            assert self._writer is not None
            await self._writer.execute(
                "SELECT lake.observe_shape($1, $2)", self.run_id, self.shapes.notes()
            )

    async def _check_writer(self) -> None:
        if self.joined:
            raise LakeError(self._joined_cannot("finish"))
        if self._writer is None:
            ended = await run_summary(self._pool, self.run_id)
            raise LakeError(f"{self.domain.name} run {self.run_id} is already {ended.status}")

    def _joined_cannot(self, what: str) -> str:
        return (
            f"this process joined {self.domain.name} run {self.run_id} to load a share of it: "
            f"only the process that started the run can {what} it"
        )

    async def _release_writer(self) -> None:
        """Give the writer lock back: it ends with the writer's session."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            await writer.close(timeout=10)
        except Exception as exc:  # a session the database already dropped: the lock went too
            log.debug("closing the writer session of run %s: %s", self.run_id, exc)
            writer.terminate()


async def run_summary(pool: asyncpg.Pool, run_id: int) -> RunSummary:
    async with pool.acquire() as conn:
        run = await conn.fetchrow(
            "SELECT r.*, coalesce(x.repeated, 0) AS repeated, x.schema_changes"
            " FROM lake.runs AS r LEFT JOIN lake.run_details AS x USING (run_id)"
            " WHERE r.run_id = $1",
            run_id,
        )
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
        listed=run["listed"],
        missing=run["missing"],
        missing_sample=list(run["missing_sample"] or ()),
        outcome=run["outcome"],
        resumed_from=run["resumed_from"],
        carried=run["carried"],
        repeated=run["repeated"],
        schema_changes=list(run["schema_changes"] or ()),
    )


def _connector_of(pool: asyncpg.Pool) -> Callable[[], Awaitable[asyncpg.Connection]]:
    # asyncpg keeps the parameters it opens connections with on the pool (set by create_pool or
    # set_connect_args) and offers no getter for them.
    args, kwargs = pool._connect_args, pool._connect_kwargs

    def connect() -> Awaitable[asyncpg.Connection]:
        return asyncpg.connect(*args, **kwargs)

    return connect


class Lake:
    """The lake seen from the flows: start load runs, ask what the layers hold."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        connect: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
        track_shapes: bool = True,
    ) -> None:
        """`connect` opens a session of a run's own for its writer lock (by default, with the
        pool's connection parameters): outside the pool, so that closing the pool never waits
        for a run somebody forgot to end. `track_shapes`: see LoadRun."""
        self._pool = pool
        self._track_shapes = track_shapes
        self._connect = connect or _connector_of(pool)
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
        self,
        domain: str,
        *,
        flow: str | None = None,
        flow_run_id: str | None = None,
        wait_s: float = 0.0,
        resume: bool = False,
        fresh_for_s: float = DEFAULT_RESUME_WINDOW_S,
        on_wait: Callable[[str], None] | None = None,
    ) -> LoadRun:
        """Open a run of `domain`, holding its writer lock until the run ends.

        While another run of the domain is loading, wait up to `wait_s` seconds for it, then
        raise WriterBusy naming it; `on_wait(why)` is called at each try while waiting ("person
        run 12 is loading (started ..., flow run ...): one writer per domain"). Runs left
        `running` by a process that died are marked abandoned. With `resume`, the domain's latest run, if it failed or was abandoned and
        its work began less than `fresh_for_s` ago, is resumed: its listing and the keys it
        loaded become this run's (`resumed_from`, `carried`, `pending_keys`).
        """
        spec = await self.domain(domain)
        writer = await self._connect()
        deadline = time.monotonic() + wait_s
        try:
            while True:
                try:
                    run = await writer.fetchrow(
                        "SELECT run_id, resumed_from, carried"
                        " FROM lake.start_run($1, $2, $3, $4, make_interval(secs => $5))",
                        domain,
                        flow,
                        flow_run_id,
                        resume,
                        fresh_for_s,
                    )
                    break
                except asyncpg.LockNotAvailableError as exc:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        waited = f" after waiting {wait_s:g} s" if wait_s else ""
                        raise WriterBusy(f"refused{waited}: {exc}") from None
                    log.warning("waiting up to %.0f s: %s", left, exc)
                    if on_wait is not None:
                        on_wait(str(exc))
                    await asyncio.sleep(min(2.0, left))
        except BaseException:
            writer.terminate()
            raise
        return LoadRun(
            self._pool,
            spec,
            run["run_id"],
            writer,
            resumed_from=run["resumed_from"],
            carried=run["carried"],
            track_shapes=self._track_shapes,
        )

    async def join_run(self, domain: str, run_id: int) -> LoadRun:
        """Load into run `run_id` of `domain`, started by another process that holds its
        writer lock (a shard of a run split across workers). Its batches are refused once that
        process lost the lock; it cannot finish the run."""
        spec = await self.domain(domain)
        async with self._pool.acquire() as conn:
            status = await conn.fetchval(
                "SELECT status FROM lake.runs WHERE run_id = $1 AND domain = $2", run_id, domain
            )
        if status != "running":
            found = f"is {status}" if status else "does not exist"
            raise LakeError(f"{domain} run {run_id} {found}: there is nothing to join")
        return LoadRun(self._pool, spec, run_id, None, track_shapes=self._track_shapes)

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
