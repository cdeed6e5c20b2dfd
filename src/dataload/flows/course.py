"""The course flow: SnapLogic's courses of the active terms into the course lake.

The active terms come from the lake (the term flow's `active_terms` service). Each term is one
SnapLogic call, several at once (`DATALOAD_SNAPLOGIC_CONCURRENCY`); every course returned is
stored, whatever its career. A term's courses are written as soon as they arrive, so memory
holds at most one answer per concurrent call. The run is a complete snapshot of the fetched
terms only when every term answered: then a course of those terms that is no longer listed is
marked deleted, and courses of other terms are left alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from dataload.flows.concurrency import map_bounded
from dataload.flows.progress import RunProgress
from dataload.flows.report import LoadReport, run_name
from dataload.flows.session import LoadSession
from dataload.flows.states import final_state
from dataload.flows.writing import batched
from dataload.lake import Lake, LoadRun
from dataload.settings import Settings
from dataload.sources import SnapLogicCourses

__all__ = ["NoActiveTermsError", "course_raw_flow"]


class NoActiveTermsError(RuntimeError):
    """The lake knows no active term, so there is no course to ask for."""


@task(name="read-active-terms", retries=0, cache_policy=NO_CACHE)
async def read_active_terms(lake: Lake) -> list[str]:
    """The active term codes, from the term lake's active_terms service."""
    codes = await lake.active_term_codes()
    if not codes:
        raise NoActiveTermsError(
            "the lake has no active terms, so no course can be fetched: "
            "run the term flow first (`dataload run term`)"
        )
    return codes


@task(name="load-term-courses", retries=0, cache_policy=NO_CACHE)
async def load_term_courses(
    snaplogic: SnapLogicCourses, run: LoadRun, term_code: str, batch_size: int, lock: asyncio.Lock
) -> int:
    """Fetch one term's courses from SnapLogic and write them to the lake; returns the count."""
    courses = await snaplogic.courses(term_code)
    async with lock:  # one writer at a time: batches of different terms do not interleave
        for batch in batched(courses, batch_size):
            await run.load(batch)
    get_run_logger().info("term %s: %d courses", term_code, len(courses))
    return len(courses)


async def load_courses(
    snaplogic: SnapLogicCourses,
    run: LoadRun,
    term_codes: list[str],
    settings: Settings,
    progress: RunProgress | None = None,
) -> dict[str, int]:
    """Every active term's courses, several terms at once (courses per term); raises the first
    term that failed once the others have finished (their courses are kept, nothing deleted)."""
    lock = asyncio.Lock()
    progress = progress or RunProgress("course")
    terms_done = progress.step("terms fetched", total=len(term_codes))
    courses_done = progress.step("courses loaded")

    async def one_term(term_code: str) -> int | BaseException:
        try:
            count = await load_term_courses(
                snaplogic, run, term_code, settings.lake_batch_size, lock
            )
        except Exception as exc:  # settled below, after the other terms
            return exc
        terms_done.add()
        courses_done.add(count)
        return count

    outcomes = await map_bounded(one_term, term_codes, limit=settings.snaplogic_concurrency)
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if failures:
        raise failures[0]
    return dict(zip(term_codes, outcomes, strict=True))  # type: ignore[arg-type]


@flow(name="course-raw-flow", flow_run_name=run_name("course"), log_prints=False)
async def course_raw_flow(allow_mass_delete: bool = False) -> LoadReport | State[Any]:
    """Load SnapLogic courses of the active terms into course_raw, course_xform, course_curated."""
    settings = Settings()
    async with LoadSession.open(settings, "course", allow_mass_delete=allow_mass_delete) as session:
        term_codes = await read_active_terms(session.lake)
        session.note("active terms", len(term_codes))
        snaplogic = await session.client(SnapLogicCourses)
        per_term = await load_courses(
            snaplogic, session.run, term_codes, settings, session.progress
        )
        session.note("courses", sum(per_term.values()))
        # Only the active terms were asked for: courses of other terms are not gone. A term
        # answered with no course at all is left out too: an empty answer for a term that had
        # courses is likelier a SnapLogic fault than every course cancelled.
        answered = [term for term, count in per_term.items() if count]
        if len(answered) < len(per_term):
            get_run_logger().warning(
                "no course for term(s) %s: their stored courses were left as they are",
                ", ".join(term for term in per_term if term not in answered),
            )
        await session.finish(complete=True, scope={"term_code": answered})
    assert session.report is not None
    return await final_state(session.report)
