"""currencies (seed 002): the Frankfurter API's currency list, weekly, as a complete snapshot.

A currency the API no longer lists is deleted from the lake, under the lake's mass-deletion
guard; an empty list fails the run (`min_records`) rather than deleting every currency.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from dataload.domains import DomainSpec, Guards, Key, Listing, Records, Schedule
from dataload.examples.frankfurter import Frankfurter

if TYPE_CHECKING:
    from dataload.flows.domain import DomainRun

__all__ = ["DOMAIN"]


async def currencies(run: DomainRun) -> AsyncIterator[Records]:
    api = await run.client(Frankfurter)
    listed = await api.currencies()
    run.note("currencies", len(listed))
    yield [{"code": code, "name": name} for code, name in listed.items()]


DOMAIN = DomainSpec(
    name="currencies",
    description="Currencies of the Frankfurter exchange-rate API.",
    keys=(Key("code"),),
    listing=Listing.COMPLETE,
    source=currencies,
    source_label="Frankfurter API /currencies",
    schedules=(Schedule("weekly", cron="0 0 * * 0", description="Sundays at 00:00 UTC."),),
    tags=("source:frankfurter", "seed:002"),
    guards=Guards(min_records=1),
)
