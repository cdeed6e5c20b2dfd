"""A run's progress reaches the Prefect UI; its name says what ran; secrets may be Secret blocks."""

from __future__ import annotations

import pytest
from prefect import get_client
from prefect.blocks.system import Secret
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from tests.flows.world import World

from dataload.flows import FLOWS
from dataload.settings import ConfigurationError

pytestmark = pytest.mark.slow


async def test_a_person_run_publishes_its_progress_and_is_named_by_domain_and_date(
    world: World,
) -> None:
    state = await FLOWS["person"](return_state=True)
    report = await state.aresult()

    async with get_client() as client:
        run = await client.read_flow_run(state.state_details.flow_run_id)
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["person-progress"]))
        )
    assert run.name.startswith("person 20")
    mine = [artifact for artifact in artifacts if artifact.flow_run_id == run.id]
    assert len(mine) == 1 and mine[0].type == "progress"
    assert mine[0].data == 100.0
    people = report.fetched["unique people"]
    assert f"people queried {people:,} in" in mine[0].description
    assert f"records loaded {report.counts['fetched']:,} in" in mine[0].description


async def test_a_secret_setting_may_name_a_prefect_secret_block(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await Secret(value=world.settings.people_soft_pass.get_secret_value()).save(
        "test-peoplesoft-password", overwrite=True
    )
    monkeypatch.setenv("PEOPLE_SOFT_PASS", "prefect-secret:test-peoplesoft-password")

    report = await FLOWS["term"]()

    assert report.status == "complete" and report.counts["fetched"] > 0


async def test_a_missing_secret_block_is_named_with_its_variable(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNAPLOGIC_COURSE_KEY", "prefect-secret:no-such-block")

    with pytest.raises(ConfigurationError, match="SNAPLOGIC_COURSE_KEY names the Prefect Secret"):
        await FLOWS["course"]()
