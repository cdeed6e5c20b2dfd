"""A source that answers well-formed but empty is likelier broken than empty: it deletes nothing."""

from __future__ import annotations

import pytest
from tests.flows.world import World

from dataload.flows import FLOWS
from dataload.flows.states import IncompleteRun
from dataload.sandbox.config import Faults

pytestmark = pytest.mark.slow


async def test_an_id_source_listing_nobody_makes_the_person_run_partial(world: World) -> None:
    await FLOWS["person"]()
    live_before = await world.count(
        "SELECT count(*) FROM person_xform.current_person_data WHERE deleted_at IS NULL"
    )
    world.sandbox.config.endpoint_faults["sap.employees"] = Faults(empty_rate=1.0)

    with pytest.raises(IncompleteRun) as partial:
        await FLOWS["person"]()

    report = partial.value.report
    assert report.status == "partial" and report.counts["deleted"] == 0
    assert "SAP active employees listed nobody" in report.outcome
    assert (
        await world.count(
            "SELECT count(*) FROM person_xform.current_person_data WHERE deleted_at IS NULL"
        )
        == live_before
    )


async def test_a_term_answered_with_no_course_keeps_its_courses(world: World) -> None:
    await FLOWS["term"]()
    await FLOWS["course"]()
    live_before = await world.count(
        "SELECT count(*) FROM course_xform.current_course_data WHERE deleted_at IS NULL"
    )
    world.sandbox.config.endpoint_faults["snaplogic.course"] = Faults(empty_rate=1.0)

    report = await FLOWS["course"]()

    assert report.status == "complete" and report.counts["deleted"] == 0
    assert (
        await world.count(
            "SELECT count(*) FROM course_xform.current_course_data WHERE deleted_at IS NULL"
        )
        == live_before
        > 0
    )
