"""One flow run's hold on the lake: the pool, the ledger run, the source clients, the report.

`LoadSession.open(settings, domain)` migrates the database (the implicit `db init`), opens a
ledger run, and on the way out closes everything and publishes the run's report as a table
artifact. A flow body that raises, or is cancelled, marks the ledger run failed: nothing is
deleted by a run that did not finish, and the ledger says why it stopped. Secret settings that
name Prefect Secret blocks are resolved first; the run's steps are published as a progress
artifact while it runs; a failed, partial or guarded run is announced (`flows.alerts`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Self, TypeVar

import asyncpg
from prefect import get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.runtime import flow_run

from dataload.destinations import destinations
from dataload.flows.alerts import alert_for, flow_run_page, send_alert
from dataload.flows.progress import RunProgress, describe_step, publish_progress
from dataload.flows.report import LoadReport, SourceUse
from dataload.flows.secrets import resolve_secret_blocks
from dataload.lake import Lake, LoadRun, RunSummary
from dataload.lake.db import create_pool, prepare_lake
from dataload.lake.install import DomainTables
from dataload.settings import SECRET_BLOCK_PREFIX, Settings
from dataload.sources.http import SourceClient

__all__ = ["LoadSession"]

C = TypeVar("C", bound=SourceClient)

#: Longest error text kept in the ledger and the report.
_ERROR_LIMIT = 500


class LoadSession:
    """The lake, this run's ledger entry and the source clients of one flow run."""

    def __init__(
        self,
        settings: Settings,
        domain: str,
        pool: asyncpg.Pool,
        run: LoadRun,
        allow_mass_delete: bool = False,
        label: str | None = None,
        progress: RunProgress | None = None,
    ) -> None:
        self.settings = settings
        self.domain = domain
        self.pool = pool
        self.lake = Lake(pool)
        self.run = run
        self.label = label
        self.allow_mass_delete = allow_mass_delete
        self.fetched: dict[str, int] = {}
        self.summary: RunSummary | None = None
        self.report: LoadReport | None = None
        self.progress = progress or RunProgress(domain)
        self._clients: dict[str, SourceClient] = {}
        self._started = time.monotonic()
        self._stack = AsyncExitStack()

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        domain: str,
        *,
        allow_mass_delete: bool = False,
        tables: DomainTables | None = None,
        label: str | None = None,
        resume: bool = False,
    ) -> AsyncIterator[Self]:
        """`allow_mass_delete` lifts the mass-deletion guard (DATALOAD_MAX_DELETE_SHARE) for
        this run; a run of the domain already loading is waited for (DATALOAD_WRITER_WAIT_S).
        `resume`: resume the domain's latest run if it failed or was killed within
        DATALOAD_RESUME_WINDOW_H (`LoadRun.resumed_from`), else start afresh.
        `tables`: a declared domain's, installed first if the lake lacks it; `label`: the run's
        name in the ledger and its report (default: the flow's name)."""
        try:
            settings = await resolve_secret_blocks(settings)
            # Migrations, the shipped services on a new lake, and this domain if it is new, as
            # the operator; then the run loads as the loader (lake/db.py).
            await prepare_lake(settings, [tables] if tables else [])
            pool = await create_pool(settings, loader=True)
        except Exception as exc:  # no ledger run yet: the alert is all that tells of it
            await _alert(settings, domain, "failed", f"{domain} run failed: {_describe(exc)}")
            raise
        try:
            progress = RunProgress(domain)
            waiting = _WriterWait(progress, settings.writer_wait_s)
            try:
                run = await Lake(pool).start_run(
                    domain,
                    flow=label or flow_run.get_flow_name(),
                    flow_run_id=flow_run.get_id(),
                    wait_s=settings.writer_wait_s,
                    resume=resume,
                    fresh_for_s=settings.resume_window_h * 3600,
                    on_wait=waiting.note,
                )
            finally:
                waiting.end()
            session = cls(settings, domain, pool, run, allow_mass_delete, label, progress)
            async with session._stack:
                await session._stack.enter_async_context(publish_progress(session.progress))
                try:
                    yield session
                    if session.summary is None:
                        raise RuntimeError(
                            f"the {domain} flow ended without finishing its lake run"
                        )
                except BaseException as exc:
                    await session._fail(exc)
                    raise
            # Clients are closed (their stats final) before the report is written.
            await session._publish()
        finally:
            await pool.close()

    async def client(self, client_type: type[C]) -> C:
        """A source client configured from the settings, closed with the session."""
        return await self.adopt(client_type.from_settings(self.settings))

    async def adopt(self, client: C) -> C:
        """A client the caller built, closed with the session, its use in the report."""
        client = await self._stack.enter_async_context(client)
        self._clients[type(client).__name__] = client
        return client

    def note(self, what: str, count: int) -> None:
        """Record a count the sources answered, for the report ("student ids": 1800)."""
        self.fetched[what] = count

    async def finish(
        self,
        *,
        complete: bool,
        scope: Mapping[str, Sequence[str]] | None = None,
        incomplete: str | None = None,
    ) -> RunSummary:
        """End the ledger run; a complete snapshot marks keys it did not see (within `scope`,
        when it covered only part of the domain) as deleted, within the lake's rules (see
        `LoadRun.finish`). `incomplete` says why a run that is not complete is not."""
        self.summary = await self.run.finish(
            complete=complete,
            scope=scope,
            allow_mass_delete=self.allow_mass_delete,
            max_delete_share=self.settings.max_delete_share,
            incomplete=incomplete,
        )
        if self.summary.status != "complete":
            get_run_logger().warning(
                "%s run %s: %s", self.domain, self.summary.status, self.summary.outcome
            )
        return self.summary

    async def finish_incremental(self, *, cursor: str | None = None) -> RunSummary:
        """End an incremental run: it deletes nobody; `cursor` is kept for the next run."""
        self.summary = await self.run.finish_incremental(cursor=cursor)
        return self.summary

    async def _fail(self, exc: BaseException) -> None:
        reason = _describe(exc)
        logger = get_run_logger()
        logger.error("%s run failed: %s", self.domain, reason)
        self.progress.failed = True
        await self._stack.aclose()
        try:
            if self.summary is None:
                self.summary = await self.run.fail(reason)
            await self._publish(error=reason)
        except Exception as ledger_error:  # the run's own failure is the one to raise
            logger.warning("could not record the failure in the lake's ledger: %s", ledger_error)

    async def _publish(self, error: str | None = None) -> None:
        assert self.summary is not None
        layers: dict[str, Any] = await self.lake.layer_counts(self.domain)
        services = layers.pop("curated", {})
        summary = self.summary
        self.report = LoadReport(
            flow=self.label or flow_run.get_flow_name() or f"{self.domain}-raw-flow",
            domain=self.domain,
            run_id=summary.run_id,
            status=summary.status,
            duration_s=time.monotonic() - self._started,
            counts={
                "fetched": summary.offered,
                "new": summary.inserted,
                "changed": summary.changed,
                "unchanged": summary.unchanged,
                "deleted": summary.deleted,
                "rejected": summary.rejected,
                **({"repeated": summary.repeated} if summary.repeated else {}),
            },
            fetched=dict(self.fetched),
            sources={
                name: SourceUse(
                    requests=client.stats.requests,
                    retries=client.stats.retries,
                    by_status=client.stats.as_dict()["by_status"],
                )
                for name, client in self._clients.items()
            },
            layers=layers,
            services=services,
            error=error,
            rejected_reasons=list(summary.rejected_reasons),
            outcome=summary.outcome,
            missing=list(summary.missing_sample),
            resumed_from=summary.resumed_from,
            carried=summary.carried,
            schema_changes=list(summary.schema_changes),
        )
        # Alerted first, so that the summary says which destination did not take it.
        self.report.alerts_unsent = await _alert(
            self.settings,
            self.domain,
            self.report.status,
            self.report.headline(),
            drift=self.report.schema_changes,
        )
        await acreate_table_artifact(
            table=self.report.table(),
            # Artifact keys allow lower-case letters, digits and dashes only.
            key=f"{self.domain.replace('_', '-')}-load-summary",
            description=f"{self.report.headline()}",
        )
        get_run_logger().info("%s", self.report.headline())


async def _alert(
    settings: Settings, domain: str, status: str, outcome: str, *, drift: Sequence[str] = ()
) -> list[str]:
    """Announce a failed, partial or guarded run, or one whose source's shape drifted, where
    DATALOAD_ALERTS says; returns why each destination that did not take the alert did not."""
    page = flow_run_page(flow_run.get_id(), settings.ui_url)
    alert = alert_for(domain, status, outcome, page, drift=drift)
    setting = settings.alerts.get_secret_value()
    if not (alert and setting and not setting.startswith(SECRET_BLOCK_PREFIX)):
        return []
    unsent = await send_alert(alert, setting)
    for line in unsent:
        get_run_logger().warning("alert not sent to %s", line)
    if not unsent:
        get_run_logger().info("alert sent to %d destination(s)", len(destinations(setting)))
    return unsent


class _WriterWait:
    """A run waiting for another run's writer lock says so: a progress step the terminal shows
    (live, or a line every few seconds when piped) and a warning in the run's log every 5 s."""

    LOG_EVERY_S = 5.0

    def __init__(self, progress: RunProgress, wait_s: float) -> None:
        self.progress = progress
        self.wait_s = wait_s
        self.step: Any = None
        self._logged = 0.0

    def note(self, why: str) -> None:
        if self.step is None:
            self.step = self.progress.waiting("waiting for the writer lock")
        why = " ".join(why.split())  # PostgreSQL's HINT comes on a line of its own
        self.step.note = f"{why}; waiting up to {self.wait_s:g} s (DATALOAD_WRITER_WAIT_S)"
        now = time.monotonic()
        if now - self._logged >= self.LOG_EVERY_S:
            self._logged = now
            get_run_logger().warning("%s", describe_step(self.step))

    def end(self) -> None:
        if self.step is not None:
            self.step.finish()


def _describe(exc: BaseException) -> str:
    """The ledger's reason for a failed run: what failed, in one line, never a secret.

    Source errors carry only redacted endpoints and variable names; others are named by type.
    """
    if isinstance(exc, KeyboardInterrupt | SystemExit) or type(exc).__name__ == "CancelledError":
        return "cancelled before it finished"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:_ERROR_LIMIT]
