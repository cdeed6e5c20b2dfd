"""Terms: a term inserted into BU_TERM_QRY's answer is one change, not a renumbering of all."""

from __future__ import annotations

from tests.flows.world import World

from dataload.flows import FLOWS
from dataload.sandbox.truth import term_truth

# The test university lists a new term on this day, renumbering the rows after it.
NEW_TERM_DAY = 24


async def test_a_new_term_adds_one_version_and_renumbered_terms_add_none(world: World) -> None:
    config = world.sandbox.config
    config.day = NEW_TERM_DAY - 1
    await FLOWS["term"]()
    config.day = NEW_TERM_DAY
    truth = term_truth(config, NEW_TERM_DAY)
    assert truth["arrived"] and truth["renumbered"], "the day must insert a term before others"

    report = await FLOWS["term"]()

    history = await world.column(
        "SELECT acad_career || '/' || strm FROM term_raw.term_data WHERE run_id = $1",
        report.run_id,
    )
    assert sorted(history) == sorted(
        f"{career}/{strm}" for career, strm in truth["arrived"] + truth["changed"]
    )
    active = await world.column(
        "SELECT strm FROM term_curated.term_data_by_service WHERE service = 'active_terms'"
    )
    assert sorted(active) == sorted(truth["active_ugrd_terms"])
