"""The generic flow of a declared domain: run its source, load what it yields, finish as its
listing says.

    source ─▶ records or batches ─▶ lake batches (DATALOAD_LAKE_BATCH_SIZE) ─▶ finish
              (the domain's async generator, given a DomainRun)          complete / scoped /
                                                                         incremental

A run that raises fails its ledger run (nothing deleted, the cursor unmoved). An incremental
run ends 'incremental': it deletes nobody, and keeps the cursor its source advanced to as it
finishes. A full refresh, for a domain that allows it, reads everything from the start and is a
complete snapshot. The lake removes the domain's never-store fields on every write.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

from prefect import Flow, flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State
from pydantic import BaseModel

from dataload.domains import DomainSpec, Listing, Records, get_domain
from dataload.flows.report import LoadReport
from dataload.flows.session import LoadSession
from dataload.flows.states import final_state
from dataload.lake.db import dsn
from dataload.lake.progress import read_cursor, record_rejections, save_cursor
from dataload.lake.tables import TableLoad
from dataload.settings import Settings
from dataload.sources.http import SourceClient

__all__ = ["DomainGuardError", "DomainRun", "check_options", "domain_flow", "run_domain"]

C = TypeVar("C", bound=SourceClient)
P = TypeVar("P", bound=BaseModel)


class DomainGuardError(RuntimeError):
    """A run refused by one of its domain's guards; the lake was left as it was."""


class DomainRun:
    """What a domain's source sees of its run: parameters, cursor, clients, scope, rejections."""

    def __init__(
        self,
        spec: DomainSpec,
        session: LoadSession,
        params: BaseModel,
        *,
        full_refresh: bool,
        cursor: str | None,
    ) -> None:
        self.spec = spec
        self.settings: Settings = session.settings
        self.params = params
        self.full_refresh = full_refresh
        #: Where the last finished run stopped (None on a first run or a full refresh).
        self.cursor = cursor
        #: For a scoped listing: key column -> the values this run's snapshot covers.
        self.scope: dict[str, list[Any]] | None = None
        self.next_cursor: str | None = None
        #: Facts (a table without a key): a hash of what the source read for its scope (a
        #: file's bytes), set before its first batch; the same hash as the scope's current
        #: version means nothing changed, and nothing more is read or stored.
        self.content_hash: str | None = None
        self.rejected = 0
        self._session = session

    def typed_params(self, kind: type[P]) -> P:
        assert isinstance(self.params, kind)
        return self.params

    async def client(self, client_type: type[C]) -> C:
        """A source client configured from the settings, closed at the end of the run, its
        requests and retries in the run's report."""
        return await self._session.client(client_type)

    async def adopt(self, client: C) -> C:
        """A client the source built itself (its key from a Prefect block, say), closed at the
        end of the run, its requests and retries in the run's report."""
        return await self._session.adopt(client)

    def note(self, what: str, count: int) -> None:
        """A count for the report ("days fetched": 31)."""
        self._session.note(what, count)

    def advance(self, value: str) -> None:
        """Move the cursor the run will save (the greatest value given wins; ISO dates and
        timestamps compare as text)."""
        if self.next_cursor is None or value > self.next_cursor:
            self.next_cursor = value

    async def reject(self, rejections: list[tuple[str, str]], *, read: int) -> None:
        """Keep records a validation step refused ((reason, sample) pairs) in the ledger, and
        refuse the run when they exceed the domain's `max_rejected_share` of the `read`."""
        self.rejected += len(rejections)
        await record_rejections(self._session.pool, self._session.run.run_id, rejections)
        limit = self.spec.guards.max_rejected_share
        if limit is not None and read and self.rejected / read > limit:
            raise DomainGuardError(
                f"{self.spec.name}: validation rejected {self.rejected} of {read} records "
                f"({self.rejected / read:.1%}, above the domain's limit of {limit:.0%}); nothing "
                "was loaded. The reasons are in lake.rejected for this run."
            )


async def _batches(
    records: AsyncIterator[Records], size: int, counted: list[int]
) -> AsyncIterator[list[dict[str, Any]]]:
    """The source's records regrouped into lake batches; counts them in `counted[0]`."""
    batch: list[dict[str, Any]] = []
    async for item in records:
        batch.extend(item if isinstance(item, list) else (item,))
        start = 0
        while len(batch) - start >= size:
            counted[0] += size
            yield batch[start : start + size]
            start += size
        del batch[:start]
    if batch:
        counted[0] += len(batch)
        yield batch


@task(name="extract-load", retries=0, cache_policy=NO_CACHE)
async def extract_load(run: DomainRun, session: LoadSession) -> int:
    """Run the domain's source and load what it yields, batch by batch; returns records offered."""
    assert run.spec.source is not None
    if run.spec.table is not None:
        return await _load_table(run, session)
    counted = [0]
    batches = _batches(run.spec.source(run), session.settings.lake_batch_size, counted)
    await session.run.load_stream(batches, concurrency=2)
    return counted[0]


async def _load_table(run: DomainRun, session: LoadSession) -> int:
    """A tabular domain: Arrow batches into its typed layers by binary COPY (lake/tables.py)."""
    spec, table = run.spec, run.spec.table
    assert spec.source is not None and table is not None
    load = TableLoad(
        session.run,
        dsn(session.settings, loader=True),
        declared=table,
        max_rejected_share=spec.guards.max_rejected_share,
    )
    items = spec.source(run)
    if table.scope is None:
        result = await load.load_keyed(items)
    else:
        first = await anext(items, None)  # the source names its scope before its first batch
        scope = (run.scope or {}).get(table.scope) or []
        if len(scope) != 1 or run.content_hash is None:
            await items.aclose()
            raise RuntimeError(
                f"{spec.name}: a facts source sets run.scope = {{{table.scope!r}: [one value]}} "
                "and run.content_hash before its first batch"
            )
        result = await load.load_facts(str(scope[0]), run.content_hash, _prepend(first, items))
    for change in await load.record_schema_changes():
        get_run_logger().warning("%s: %s", spec.name, change)
    return result.offered


async def _prepend(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    if first is not None:
        yield first
    async for item in rest:
        yield item


def _snapshot_scope(spec: DomainSpec, run: DomainRun) -> Mapping[str, list[Any]] | None:
    """What a complete run's listing covers: all the domain, or the scope its source set."""
    if spec.listing is not Listing.SCOPED:
        return None
    if not run.scope:
        raise RuntimeError(
            f"{spec.name}: a scoped domain's source must set run.scope (key column -> values "
            "its snapshot covers)"
        )
    return run.scope


@flow(name="domain-load", flow_run_name="{domain}", log_prints=False)
async def domain_flow(
    domain: str,
    params: dict[str, Any] | None = None,
    full_refresh: bool = False,
    allow_mass_delete: bool = False,
) -> LoadReport | State[Any]:
    """Load one declared domain: its source into <domain>_raw, _xform and _curated."""
    spec = get_domain(domain)
    if spec.source is None:
        raise ValueError(f"{domain} has a flow of its own: run it with `dataload run {domain}`")
    parsed = spec.check_request(params or {}, full_refresh=full_refresh)
    settings = Settings()
    async with LoadSession.open(
        settings,
        domain,
        allow_mass_delete=allow_mass_delete or spec.guards.allow_mass_delete,
        tables=spec.tables(),
        label=f"{domain}-load",
    ) as session:
        cursor = None if full_refresh else await read_cursor(session.pool, domain)
        run = DomainRun(spec, session, parsed, full_refresh=full_refresh, cursor=cursor)
        offered = await extract_load(run, session)
        if offered < spec.guards.min_records:
            raise DomainGuardError(
                f"{domain}: the source gave {offered} records, fewer than the "
                f"{spec.guards.min_records} the domain expects; nothing was deleted"
            )
        # A cursor never moves back: a backfill of the past leaves it where it is.
        moved = run.next_cursor is not None and (run.cursor is None or run.next_cursor > run.cursor)
        new_cursor = run.next_cursor if moved else None
        if spec.listing is Listing.INCREMENTAL and not full_refresh:
            await session.finish_incremental(cursor=new_cursor)
        else:  # a listing of the domain, or of its scope; a full refresh lists everything
            summary = await session.finish(complete=True, scope=_snapshot_scope(spec, run))
            if new_cursor is not None:
                await save_cursor(session.pool, summary.run_id, new_cursor)
        if new_cursor is not None:
            get_run_logger().info("%s cursor now %s", domain, new_cursor)
    assert session.report is not None
    return await final_state(session.report)


async def run_domain(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    full_refresh: bool = False,
    allow_mass_delete: bool = False,
    return_state: bool = False,
    **options: Any,
) -> Any:
    """Run one registered domain's flow now, its own or the generic one: its report, or with
    `return_state` its final Prefect state. `options` go to a domain's own flow, which must
    take them (`resume=True` for the person flow); a ValueError says which it does not."""
    spec = get_domain(name)
    spec.check_request(params or {}, full_refresh=full_refresh)
    check_options(name, options)
    if spec.flow is None:
        return await domain_flow(
            name, dict(params or {}), full_refresh, allow_mass_delete, return_state=return_state
        )
    return await own_flow(spec)(
        allow_mass_delete=allow_mass_delete, return_state=return_state, **options
    )


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """A ValueError naming the options a domain's flow does not take (`resume`, `shards`)."""
    spec = get_domain(name)
    flow = domain_flow if spec.flow is None else own_flow(spec)
    taken = inspect.signature(flow.fn).parameters
    if unknown := [option for option in options if option not in taken]:
        flags = ", ".join("--" + option.replace("_", "-") for option in unknown)
        raise ValueError(f"{name} runs do not take {flags}: the {name} flow has no such option")


def own_flow(spec: DomainSpec) -> Flow[..., Any]:
    """The flow a domain brings itself (`spec.flow`, "module:attribute")."""
    assert spec.flow is not None
    module, _, attribute = spec.flow.partition(":")
    return getattr(importlib.import_module(module), attribute)
