"""The term flow refuses an answer that would wipe out the terms everything else depends on."""

from __future__ import annotations

import pytest
from tests.flows.world import World

from dataload.flows import FLOWS
from dataload.flows.term import TermGuardError, check_term_count
from dataload.lake import Lake
from dataload.lake.db import create_pool


@pytest.mark.parametrize(("fetched", "current"), [(0, 0), (0, 40), (19, 40)])
def test_an_empty_or_much_shorter_answer_is_refused(fetched: int, current: int) -> None:
    with pytest.raises(TermGuardError, match="left as they are"):
        check_term_count.fn(fetched, current, 0.5)


@pytest.mark.parametrize(("fetched", "current"), [(20, 40), (41, 40), (3, 0)])
def test_an_answer_of_about_the_same_size_or_a_first_load_passes(
    fetched: int, current: int
) -> None:
    check_term_count.fn(fetched, current, 0.5)


@pytest.mark.slow
async def test_a_shrunken_answer_fails_the_run_and_leaves_the_terms_alone(world: World) -> None:
    # The lake holds the sandbox's terms and as many again that PeopleSoft no longer lists.
    await FLOWS["term"]()
    pool = await create_pool(world.settings)
    try:
        lake = Lake(pool)
        run = await lake.start_run("term")
        held = await lake.current_count("term")
        await run.load({"ACAD_CAREER": "ARCH", "STRM": f"{i:04d}"} for i in range(held + 1))
        await run.finish(complete=False)
    finally:
        await pool.close()
    before = await world.column("SELECT strm FROM term_xform.current_term_data ORDER BY 1")

    with pytest.raises(TermGuardError, match=r"answered \d+ terms where the lake holds \d+"):
        await FLOWS["term"]()

    assert await world.column("SELECT strm FROM term_xform.current_term_data ORDER BY 1") == before
    run_row = await world.last_run("term")
    assert run_row["status"] == "failed" and "DATALOAD_TERM_SHRINK_THRESHOLD" in run_row["error"]
