"""The person flow queries people while the id sources are still answering, and writes the lake
only once its whole listing is declared."""

from __future__ import annotations

import asyncio

import pytest
from tests.flows.world import World

from dataload.flows import FLOWS
from dataload.sandbox.config import Latency

pytestmark = pytest.mark.slow

QUERIES = "peoplesoft.BU_TERM_STD_FULL_TERM"


async def test_people_are_queried_and_fetched_while_the_directory_still_pages_but_not_written(
    world: World,
) -> None:
    # VDS, the slowest id source at scale (it pages 200 people a call), answers after 2 s.
    world.sandbox.config.endpoint_latency["vds.search"] = Latency(ms=2000)
    run = asyncio.ensure_future(FLOWS["person"]())
    seen_while_paging = {"queried": 0, "fetched": 0, "written": 0}
    while not run.done():
        endpoints = world.sandbox.stats.snapshot()["endpoints"]
        if endpoints.get("vds.search", {}).get("in_flight"):
            written = await world.count("SELECT count(*) FROM person_raw.person_data")
            for what, count in (
                ("queried", endpoints.get(QUERIES, {}).get("requests", 0)),
                ("fetched", endpoints.get("snaplogic.person", {}).get("requests", 0)),
                ("written", written),
            ):
                seen_while_paging[what] = max(seen_while_paging[what], count)
        await asyncio.sleep(0.05)
    report = await run

    assert report.status == "complete", report.headline()
    assert seen_while_paging["queried"] > 0, "PeopleSoft waited for the slowest id source"
    assert seen_while_paging["fetched"] > 0
    assert seen_while_paging["written"] == 0, "the lake was written before the listing"
    assert report.fetched["unique people"] == await world.count(
        "SELECT count(*) FROM person_xform.current_person_data WHERE deleted_at IS NULL"
    )
