"""The person flow: everyone the university knows, from four systems, into the person lake.

```
PeopleSoft student ids ─┐
SAP active employees ───┼─ de-duplicated ids ─▶ per-id PeopleSoft uidCarTerm queries
VDS faculty and staff ──┘                        (DATALOAD_PSQUERY_CONCURRENCY at once)
                                                   │ batches of DATALOAD_PERSON_BATCH_SIZE people
                                                   ▼
                                        SnapLogic person calls (DATALOAD_SNAPLOGIC_CONCURRENCY)
                                                   │ documents, sensitive fields removed
                                                   ▼
                                        lake batches (DATALOAD_LAKE_BATCH_SIZE), one writer
```

The stages run at the same time, joined by bounded streams, so memory holds a few batches
whatever the number of people: only the list of ids is kept whole. The queries start on the
first id source's answer (VDS pages through its directory 200 people a call: seconds at a large
university); the lake is written once every source has answered and the listing is declared.
A stage that fails (after its client's retries) stops the others, the run is marked failed,
nothing is deleted.

Who exists is decided by the ID sources, not by what SnapLogic happens to return: the ids are
the run's listing (`LoadRun.list_keys`). SnapLogic is known to answer `[]`, to leave people out
of an answer and to send empty objects in their place: everyone asked for and not answered is
asked for again (twice at most). Someone still not answered after that is *missing*: kept as
they are, named in the run's summary, and the run ends partial, deleting nobody; the lake
enforces it. An ID source that lists nobody makes the run partial too. Only a run in which every
listed person arrived deletes, and only people no ID source lists any more.

A run that failed or was killed can be resumed (`resume`, or Prefect retrying the flow run): the
people it committed are not asked for again. With `shards` > 1 the people still to load are
split by key hash among that many `person_shard_flow` runs on a Prefect work pool, each with its
share of each source system's concurrency (global limits); this run keeps the lake's writer
lock and finishes the run once every shard completed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import State

from dataload.flows.concurrency import first_error, gather_all
from dataload.flows.memory import release_freed_memory
from dataload.flows.progress import RunProgress, Step
from dataload.flows.report import LoadReport, run_name
from dataload.flows.secrets import resolve_secret_blocks
from dataload.flows.session import LoadSession
from dataload.flows.shards import run_shards
from dataload.flows.source_slots import (
    ensure_source_limits,
    source_limits,
    source_shares,
    source_slots,
)
from dataload.flows.states import final_state
from dataload.flows.writing import batched
from dataload.lake import Lake, LoadRun
from dataload.lake.db import create_pool
from dataload.settings import Settings
from dataload.sources import PeopleSoft, Sap, SnapLogicPersons, Vds
from dataload.sources.snaplogic import PersonBatch

__all__ = ["PeopleFeed", "PeopleLoaded", "PersonIds", "person_raw_flow", "person_shard_flow"]

Rows = list[dict[str, Any]]
#: Times the people SnapLogic left out of an answer are asked for again.
MISSING_RETRIES = 2
#: Batches of documents waiting for the lake writer.
DOCUMENT_BUFFER = 2


@dataclass(frozen=True)
class PersonIds:
    """The people to load: every id source's answer, merged in the order they came, without
    duplicates."""

    ids: list[str]
    per_source: dict[str, int]


class PeopleFeed:
    """The ids the PeopleSoft stage queries, each once, taken while the id sources are still
    being read: the queries start on the first source's answer, not after the slowest (VDS
    pages through its directory 200 people a call)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._seen: set[str] | None = set()
        self._taken = 0
        self._arrived = asyncio.Event()

    @classmethod
    def of(cls, ids: list[str]) -> PeopleFeed:
        """A feed of ids known in full (a resumed run's, a shard's)."""
        feed = cls()
        feed.ids = ids
        feed.close()
        return feed

    @property
    def complete(self) -> bool:
        """Every id source has answered: no more ids will come."""
        return self._seen is None

    def add(self, ids: list[str]) -> None:
        assert self._seen is not None, "the feed is complete"
        new = [buid for buid in ids if buid not in self._seen]
        self._seen.update(new)
        self.ids += new
        self._arrived.set()

    def close(self) -> None:
        self._seen = None
        self._arrived.set()

    async def take(self) -> str | None:
        """The next id to query; None once every id was taken and the feed is complete."""
        while self._taken == len(self.ids):
            if self.complete:
                return None
            self._arrived.clear()
            await self._arrived.wait()
        self._taken += 1
        return self.ids[self._taken - 1]

    async def completed(self) -> None:
        while not self.complete:
            self._arrived.clear()
            await self._arrived.wait()


@dataclass
class PeopleLoaded:
    """What the pipeline did, stage by stage."""

    people: int = 0
    queried: int = 0
    without_student_rows: int = 0
    snaplogic_calls: int = 0
    documents: int = 0
    empty_documents: int = 0
    #: Documents SnapLogic answered that could not be read (NaN, too deep, not an object).
    unreadable_documents: int = 0
    asked_again: int = 0
    still_missing: int = 0
    loaded: int = 0


@task(name="gather-person-ids", retries=0, cache_policy=NO_CACHE)
async def gather_person_ids(
    peoplesoft: PeopleSoft,
    sap: Sap,
    vds: Vds,
    step: Step | None = None,
    feed: PeopleFeed | None = None,
) -> PersonIds:
    """Student, active employee, faculty and staff ids, de-duplicated; each source's are added
    to `feed` as soon as it answered, and the feed is complete when all have."""
    step = step or Step("ids listed")
    feed = feed or PeopleFeed()

    async def fed(ids: Awaitable[list[str]]) -> int:
        answer = await ids
        release_freed_memory()  # what decoding a large answer took is not needed again
        feed.add(answer)
        step.add(len(answer))
        return len(answer)

    counts = await gather_all(
        fed(peoplesoft.student_ids()),
        fed(sap.active_employee_ids()),
        fed(vds.person_ids("faculty")),
        fed(vds.person_ids("staff")),
    )
    feed.close()
    step.finish()
    names = ("PeopleSoft students", "SAP active employees", "VDS faculty", "VDS staff")
    return PersonIds(feed.ids, dict(zip(names, counts, strict=True)))


@task(name="load-people", retries=0, cache_policy=NO_CACHE)
async def load_people(
    feed: PeopleFeed,
    peoplesoft: PeopleSoft,
    snaplogic: SnapLogicPersons,
    run: LoadRun,
    settings: Settings,
    progress: RunProgress | None = None,
    listed: asyncio.Event | None = None,
) -> PeopleLoaded:
    """Stream every id of `feed` through PeopleSoft, SnapLogic and into the lake. With `listed`,
    the lake is written only once it is set: the run's listing is declared first."""
    stats = PeopleLoaded()
    progress = progress or RunProgress("person")
    steps = [
        progress.step("people queried", reader=lambda: stats.queried),
        progress.step("documents fetched", reader=lambda: stats.documents),
        progress.step("records loaded", reader=lambda: stats.loaded),
    ]

    async def count_people() -> None:
        await feed.completed()
        stats.people = len(feed.ids)
        for step in steps:
            step.total = stats.people

    rows_out, rows_in = anyio.create_memory_object_stream[Rows](settings.snaplogic_concurrency)
    docs_out, docs_in = anyio.create_memory_object_stream[Rows](DOCUMENT_BUFFER)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(count_people)
            group.start_soon(
                _query_student_terms,
                feed,
                peoplesoft,
                rows_out,
                settings.person_batch_size,
                settings.psquery_concurrency,
                stats,
            )
            group.start_soon(
                _fetch_documents,
                snaplogic,
                rows_in,
                docs_out,
                settings.snaplogic_concurrency,
                stats,
            )
            group.start_soon(
                _write_documents, run, docs_in, settings.lake_batch_size, stats, listed
            )
    except BaseExceptionGroup as group_error:
        raise first_error(group_error) from None
    for step in steps:
        step.finish()
    return stats


async def _query_student_terms(
    feed: PeopleFeed,
    peoplesoft: PeopleSoft,
    out: MemoryObjectSendStream[Rows],
    batch_size: int,
    concurrency: int,
    stats: PeopleLoaded,
) -> None:
    """Stage 1: each person's uidCarTerm rows, sent on in batches of `batch_size` people.

    A person without rows (no student record: an employee, say) is sent as one row with their
    id alone, as the SnapLogic person task expects.
    """
    batch: Rows = []
    people_in_batch = 0

    async def worker() -> None:
        nonlocal batch, people_in_batch
        while (buid := await feed.take()) is not None:  # each id is taken by one worker
            rows = await peoplesoft.uid_car_term(buid)
            stats.queried += 1
            if not rows:
                stats.without_student_rows += 1
                rows = [{"CAMPUS_ID": buid}]
            batch.extend(rows)
            people_in_batch += 1
            if people_in_batch == batch_size:
                full, batch, people_in_batch = batch, [], 0
                await out.send(full)  # waits while SnapLogic is behind: back-pressure

    async with out:
        await gather_all(*(worker() for _ in range(concurrency)))
        if batch:
            await out.send(batch)


async def _fetch_documents(
    snaplogic: SnapLogicPersons,
    rows_in: MemoryObjectReceiveStream[Rows],
    out: MemoryObjectSendStream[Rows],
    concurrency: int,
    stats: PeopleLoaded,
) -> None:
    """Stage 2: SnapLogic person documents for each batch, `concurrency` calls at once."""

    async def worker(rows_in: MemoryObjectReceiveStream[Rows], out: MemoryObjectSendStream[Rows]):
        async with rows_in, out:
            async for rows in rows_in:
                await out.send(await _person_documents(snaplogic, rows, stats))

    async with rows_in, out:
        await gather_all(*(worker(rows_in.clone(), out.clone()) for _ in range(concurrency)))


async def _person_documents(snaplogic: SnapLogicPersons, rows: Rows, stats: PeopleLoaded) -> Rows:
    """One batch's documents; the people an answer left out are asked for again.

    An `[]` answer, a document missing from the answer and an empty object in its place look
    the same from here, and none says the person is gone: those still not answered after
    MISSING_RETRIES are missing (the lake sees them listed and not loaded).
    """
    documents: Rows = []
    asking = rows
    for attempt in range(MISSING_RETRIES + 1):
        answer = await snaplogic.persons(asking)
        documents += answer.records
        stats.snaplogic_calls += 1
        stats.empty_documents += answer.dropped_empty
        _note_unreadable(answer, stats)
        answered = {str(document["personid"]) for document in answer.records}
        left_out = {str(row["CAMPUS_ID"]) for row in asking} - answered
        if not left_out:
            break
        if attempt == MISSING_RETRIES:
            stats.still_missing += len(left_out)
            break
        stats.asked_again += len(left_out)
        asking = [row for row in asking if str(row["CAMPUS_ID"]) in left_out]
    stats.documents += len(documents)
    return documents


def _note_unreadable(answer: PersonBatch, stats: PeopleLoaded) -> None:
    """Name the documents an answer held that could not be read: their people are not
    answered (asked again, then missing); the log says who and why, never what they held."""
    stats.unreadable_documents += len(answer.unreadable)
    for bad in answer.unreadable:
        who = bad.key or f"document {bad.position + 1} of the answer"
        get_run_logger().warning(
            "SnapLogic's person document of %s is unreadable: %s", who, bad.reason
        )


async def _write_documents(
    run: LoadRun,
    docs_in: MemoryObjectReceiveStream[Rows],
    batch_size: int,
    stats: PeopleLoaded,
    listed: asyncio.Event | None,
) -> None:
    """Stage 3: the documents into the lake, one batch (one transaction) at a time, once the
    run's listing is declared."""
    logger = get_run_logger()
    async with docs_in:
        if listed is not None:
            await listed.wait()
        async for documents in docs_in:
            for batch in batched(documents, batch_size):
                await run.load(batch)
                stats.loaded += len(batch)
            logger.info(
                "people: %d of %d queried, %d loaded",
                stats.queried,
                stats.people,
                stats.loaded,
                extra={"progress": {"done": stats.queried, "total": stats.people}},
            )


async def _list_while_loading(
    session: LoadSession, peoplesoft: PeopleSoft, sap: Sap, vds: Vds, snaplogic: SnapLogicPersons
) -> tuple[PersonIds, PeopleLoaded]:
    """Everyone listed and loaded at once: the PeopleSoft queries start on the first id
    source's answer, and the lake is written once the whole listing is declared."""
    feed, listed = PeopleFeed(), asyncio.Event()

    async def list_everyone() -> PersonIds:
        step = session.progress.step("ids listed")
        ids = await gather_person_ids(peoplesoft, sap, vds, step, feed)
        _note_ids(session, ids)
        await session.run.list_keys(ids.ids)
        listed.set()
        return ids

    loading = load_people(
        feed, peoplesoft, snaplogic, session.run, session.settings, session.progress, listed
    )
    ids, people = await gather_all(list_everyone(), loading)
    return ids, people


def _note_ids(session: LoadSession, ids: PersonIds) -> None:
    """What each id source listed, in the report (a run that fails later keeps it)."""
    for name, count in {**ids.per_source, "unique people": len(ids.ids)}.items():
        session.note(name, count)


async def _people_to_load(run: LoadRun, listed: list[str]) -> list[str]:
    """Everyone listed; for a run that resumed another, those it has not loaded yet (its listing
    is the union of both runs')."""
    if run.resumed_from is None:
        return listed
    pending = await run.pending_keys()
    get_run_logger().info(
        "resuming person run %s: %d people it loaded are not asked for again, %d to go",
        run.resumed_from,
        run.carried,
        len(pending),
    )
    return pending


async def _load_in_shards(
    run: LoadRun, people: int, shards: int, settings: Settings, progress: RunProgress
) -> PeopleLoaded:
    """The `people` still to load, split into `shards` flow runs on the work pool (see
    `flows.shards`), within the source systems' global concurrency limits; returns when all
    completed (ShardsFailed otherwise: the run then fails, and may be resumed)."""
    # This run holds the person writer lock: slots still held are a killed run's shards'.
    await ensure_source_limits(source_limits(settings), fresh=True)
    step = progress.step("records loaded", total=people)

    async def follow_the_lake() -> None:  # the shards write elsewhere: their commits tell
        while True:
            await asyncio.sleep(1)
            step.count = await run.offered()

    follower = asyncio.ensure_future(follow_the_lake())
    try:
        finished = await run_shards(
            person_shard_flow,
            [{"run_id": run.run_id, "shard": shard, "shards": shards} for shard in range(shards)],
            settings=settings,
        )
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    step.count = await run.offered()
    step.finish()
    total = PeopleLoaded()
    for shard in finished:
        try:
            counts: PeopleLoaded = await shard.state.aresult()
        except Exception as exc:  # a result storage the workers do not share with us
            get_run_logger().warning("shard %d's counts are not readable: %s", shard.shard, exc)
            continue
        for name, value in asdict(counts).items():
            setattr(total, name, getattr(total, name) + value)
    return total


@flow(
    name="person-shard-flow",
    flow_run_name="person run {run_id}: shard {shard} of {shards}",
    persist_result=True,  # its counts, read by the parent
    log_prints=False,
)
async def person_shard_flow(run_id: int, shard: int, shards: int) -> PeopleLoaded:
    """Shard `shard` (0-based) of `shards` of person run `run_id`, started by
    `person_raw_flow(shards=...)`: queries and loads its share of the people the run has still
    to load, within its share of each source system's concurrency. The parent finishes the run."""
    settings = await resolve_secret_blocks(Settings())
    share = source_shares(settings, shards)[shard]
    settings = settings.model_copy(
        update={
            "psquery_concurrency": share["peoplesoft"],
            "snaplogic_concurrency": share["snaplogic"],
        }
    )
    pool = await create_pool(settings, loader=True)
    try:
        run = await Lake(pool).join_run("person", run_id)
        ids = await run.pending_keys(shard=shard, shards=shards)
        get_run_logger().info(
            "person run %s, shard %d of %d: %d people, %s", run_id, shard, shards, len(ids), share
        )
        async with (
            source_slots(share),
            PeopleSoft.from_settings(settings) as peoplesoft,
            SnapLogicPersons.from_settings(settings) as snaplogic,
        ):
            return await load_people(PeopleFeed.of(ids), peoplesoft, snaplogic, run, settings)
    finally:
        await pool.close()


@flow(name="person-raw-flow", flow_run_name=run_name("person"), log_prints=False)
async def person_raw_flow(
    allow_mass_delete: bool = False, resume: bool = False, shards: int | None = None
) -> LoadReport | State[Any]:
    """Load people from PeopleSoft, SAP, VDS and SnapLogic into person_raw, _xform, _curated.

    `allow_mass_delete` lifts the mass-deletion guard for this run (DATALOAD_MAX_DELETE_SHARE).
    `resume` resumes the latest person run if it failed or was killed (within
    DATALOAD_RESUME_WINDOW_H): the people it loaded are not asked for again. A retry of this
    flow run by Prefect always resumes. `shards` (default DATALOAD_PERSON_SHARDS) > 1 splits
    the people among that many flow runs on the work pool (`person_shard_flow`).
    """
    settings = Settings()
    shards = shards or settings.person_shards
    if shards < 1:
        raise ValueError(f"a person run needs at least one shard, not {shards}")
    resume = resume or flow_run.get_run_count() > 1
    async with LoadSession.open(
        settings, "person", allow_mass_delete=allow_mass_delete, resume=resume
    ) as session:
        peoplesoft = await session.client(PeopleSoft)
        sap = await session.client(Sap)
        vds = await session.client(Vds)
        snaplogic = await session.client(SnapLogicPersons)
        run = session.run
        if resume and run.resumed_from is None:
            get_run_logger().info(
                "nothing to resume (no failed person run within the window): a full run"
            )
        if shards == 1 and run.resumed_from is None:
            ids, people = await _list_while_loading(session, peoplesoft, sap, vds, snaplogic)
        else:  # the people still to load are known only once everyone is listed
            ids = await gather_person_ids(peoplesoft, sap, vds, session.progress.step("ids listed"))
            _note_ids(session, ids)
            await run.list_keys(ids.ids)
            to_load = await _people_to_load(run, ids.ids)
            if shards > 1:
                people = await _load_in_shards(
                    run, len(to_load), shards, session.settings, session.progress
                )
            else:
                people = await load_people(
                    PeopleFeed.of(to_load),
                    peoplesoft,
                    snaplogic,
                    run,
                    session.settings,
                    session.progress,
                )
        session.note("people without student rows", people.without_student_rows)
        session.note("empty documents dropped", people.empty_documents)
        session.note("unreadable documents", people.unreadable_documents)
        session.note("people asked for again", people.asked_again)
        session.note("people SnapLogic never answered", people.still_missing)
        # An ID source that lists nobody is likelier broken than empty: trusting it would
        # delete everyone only it lists. Such a run loads what came and deletes nobody.
        silent = [name for name, count in ids.per_source.items() if count == 0]
        await session.finish(
            complete=not silent,
            incomplete=f"{', '.join(silent)} listed nobody" if silent else None,
        )
    assert session.report is not None
    return await final_state(session.report)
