"""Failed, partial and guarded runs tell DATALOAD_ALERTS's destinations; good runs do not."""

from __future__ import annotations

import pytest
from tests.flows.webhook import webhook_receiver
from tests.flows.world import World

from dataload.flows import FLOWS
from dataload.flows.alerts import alert_for
from dataload.sandbox.config import Faults

pytestmark = pytest.mark.slow


async def test_a_failed_run_posts_its_outcome_and_page_to_a_local_webhook(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEOPLE_SOFT_PASS", "wrong-s3cret")
    with webhook_receiver() as hook:
        monkeypatch.setenv("DATALOAD_ALERTS", hook.url)

        with pytest.raises(Exception, match="PEOPLE_SOFT_PASS"):
            await FLOWS["term"]()

    assert len(hook.posts) == 1
    post = hook.posts[0]
    assert post["path"] == "/hooks/dataload"
    assert post["json"]["title"] == "dataload term run failed"
    outcome, page = post["json"]["message"].splitlines()
    assert "term-raw-flow: failed" in outcome and "PEOPLE_SOFT_PASS" in outcome
    assert "/runs/flow-run/" in page
    assert "wrong-s3cret" not in str(post)  # the secret itself never travels


async def test_a_partial_run_alerts_and_a_complete_one_does_not(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    with webhook_receiver() as hook:
        monkeypatch.setenv("DATALOAD_ALERTS", f"json://{hook.url.removeprefix('http://')}")
        await FLOWS["person"]()
        assert hook.posts == []

        world.sandbox.config.endpoint_faults["sap.employees"] = Faults(empty_rate=1.0)
        report = await FLOWS["person"]()

    assert report.status == "partial"
    assert [post["json"]["title"] for post in hook.posts] == ["dataload person run partial"]


async def test_an_unreachable_destination_does_not_change_the_outcome(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.sandbox.config.credentials.peoplesoft_password = "changed"
    monkeypatch.setenv("DATALOAD_ALERTS", "http://127.0.0.1:9/nobody-listens")

    with pytest.raises(Exception, match="PEOPLE_SOFT_PASS"):
        await FLOWS["term"]()

    assert (await world.last_run("term"))["status"] == "failed"


def test_guarded_and_failed_outcomes_call_for_an_alert_complete_does_not() -> None:
    assert alert_for("person", "guarded", "person-raw-flow: guarded", "http://ui/x") is not None
    assert alert_for("person", "failed", "person-raw-flow: failed", None) is not None
    assert alert_for("person", "complete", "person-raw-flow: complete", None) is None
