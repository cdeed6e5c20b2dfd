"""The term flow: PeopleSoft's BU_TERM_QRY into the term lake, as a complete snapshot.

Terms drive everything else (the course flow fetches the active terms' courses), so an answer
that would wipe them out is refused: an empty answer, or one much shorter than the terms the
lake holds (`DATALOAD_TERM_SHRINK_THRESHOLD`), fails the run before anything is written.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from dataload.flows.report import LoadReport, run_name
from dataload.flows.session import LoadSession
from dataload.flows.states import final_state
from dataload.flows.writing import load_records
from dataload.settings import Settings
from dataload.sources import PeopleSoft

__all__ = ["TermGuardError", "check_term_count", "term_raw_flow"]


class TermGuardError(RuntimeError):
    """PeopleSoft answered too few terms to replace the ones the lake holds."""


# A row's number is its place in this answer, not a fact about the term: kept, one new term
# would make every term listed after it look changed and fill raw with false history. The
# active terms are ordered by STRM, PeopleSoft's chronological term code, which is also the
# order the query numbers its rows in.
ROW_NUMBER = "attr:rownumber"


@task(name="fetch-terms", retries=0, cache_policy=NO_CACHE)
async def fetch_terms(peoplesoft: PeopleSoft) -> list[dict[str, Any]]:
    """Every (career, term) row of BU_TERM_QRY, without its row number."""
    rows = await peoplesoft.terms()
    for row in rows:
        row.pop(ROW_NUMBER, None)
    return rows


@task(name="check-term-count", retries=0, cache_policy=NO_CACHE)
def check_term_count(fetched: int, current: int, threshold: float) -> None:
    """Refuse an empty answer, or one shorter than `threshold` times the current terms."""
    if fetched == 0:
        raise TermGuardError(
            "PeopleSoft BU_TERM_QRY answered no terms; the lake's terms were left as they are. "
            "Check the query in PeopleSoft, then run `dataload run term` again."
        )
    if fetched < threshold * current:
        raise TermGuardError(
            f"PeopleSoft BU_TERM_QRY answered {fetched} terms where the lake holds {current} "
            f"(below {threshold:.0%}, DATALOAD_TERM_SHRINK_THRESHOLD); the lake's terms were "
            "left as they are. If the shrink is real, lower the threshold for one run."
        )


@flow(name="term-raw-flow", flow_run_name=run_name("term"), log_prints=False)
async def term_raw_flow(allow_mass_delete: bool = False) -> LoadReport | State[Any]:
    """Load PeopleSoft terms into term_raw (history), term_xform and term_curated.

    `allow_mass_delete` lifts the mass-deletion guard for this run (DATALOAD_MAX_DELETE_SHARE).
    """
    settings = Settings()
    async with LoadSession.open(settings, "term", allow_mass_delete=allow_mass_delete) as session:
        peoplesoft = await session.client(PeopleSoft)
        fetched = session.progress.step("terms fetched")
        loaded = session.progress.step("records loaded")
        terms = await fetch_terms(peoplesoft)
        fetched.add(len(terms))
        fetched.finish()
        loaded.total = len(terms)
        session.note("terms", len(terms))
        current = await session.lake.current_count("term")
        check_term_count(len(terms), current, settings.term_shrink_threshold)
        await load_records(session.run, terms, batch_size=settings.lake_batch_size, step=loaded)
        await session.finish(complete=True)
    assert session.report is not None
    return await final_state(session.report)
