"""Failed, partial and guarded runs tell DATALOAD_ALERTS's destinations; good runs do not."""

from __future__ import annotations

import pytest
from tests.flows.webhook import webhook_receiver
from tests.flows.world import World

from dataload.flows import FLOWS
from dataload.flows.alerts import alert_for
from dataload.flows.states import IncompleteRun
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
    assert post["json"]["type"] == "failure"  # it was "info", whatever the outcome
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
        with pytest.raises(IncompleteRun) as partial:
            await FLOWS["person"]()

    assert partial.value.report.status == "partial"
    assert [post["json"]["title"] for post in hook.posts] == ["dataload person run partial"]
    assert hook.posts[0]["json"]["type"] == "warning"


async def test_a_webhook_that_authenticates_by_token_receives_the_alert_with_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEOPLE_SOFT_PASS", "wrong")
    monkeypatch.setenv("DATALOAD_UI_URL", "https://prefect.example.edu/")
    with webhook_receiver(token="t0ken") as hook:
        monkeypatch.setenv("DATALOAD_ALERTS", f"{hook.url}?token=t0ken&team=ops")

        with pytest.raises(Exception, match="PEOPLE_SOFT_PASS"):
            await FLOWS["term"]()

    # Before: the query string was dropped on the way (Apprise took it for its own options),
    # and the webhook refused every alert.
    assert hook.refused == 0
    [post] = hook.posts
    assert post["path"] == "/hooks/dataload?token=t0ken&team=ops"
    page = post["json"]["message"].splitlines()[-1]
    assert page.startswith("https://prefect.example.edu/runs/flow-run/")  # DATALOAD_UI_URL


async def test_an_unreachable_destination_does_not_change_the_outcome(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.sandbox.config.credentials.peoplesoft_password = "changed"
    monkeypatch.setenv("DATALOAD_ALERTS", "http://127.0.0.1:9/nobody-listens")

    with pytest.raises(Exception, match="PEOPLE_SOFT_PASS"):
        await FLOWS["term"]()

    assert (await world.last_run("term"))["status"] == "failed"


async def test_a_destination_that_refuses_the_alert_is_named_in_the_summary(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.sandbox.config.endpoint_faults["sap.employees"] = Faults(empty_rate=1.0)
    with webhook_receiver(token="right") as hook:
        monkeypatch.setenv("DATALOAD_ALERTS", f"{hook.url}?token=wrong")
        with pytest.raises(IncompleteRun) as partial:
            await FLOWS["person"]()

    assert hook.refused == 1
    [unsent] = partial.value.report.alerts_unsent
    assert unsent == f"{hook.url}: HTTP 401 Unauthorized"  # the token itself is not shown
    assert ("alert", "not sent to", unsent) in [
        tuple(r.values()) for r in partial.value.report.table()
    ]


def test_guarded_and_failed_outcomes_call_for_an_alert_complete_does_not() -> None:
    assert alert_for("person", "guarded", "person-raw-flow: guarded", "http://ui/x") is not None
    assert alert_for("person", "failed", "person-raw-flow: failed", None) is not None
    assert alert_for("person", "complete", "person-raw-flow: complete", None) is None


async def test_a_prefect_notification_block_is_a_destination_too(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    with webhook_receiver() as hook:
        await CustomWebhookNotificationBlock(
            name="ops",
            url=hook.url,
            json_data={"subject": "{{subject}}", "text": "{{body}}"},
        ).save("dataload-test-ops", overwrite=True)
        monkeypatch.setenv("PEOPLE_SOFT_PASS", "wrong")
        monkeypatch.setenv("DATALOAD_ALERTS", "prefect:custom-webhook/dataload-test-ops")

        with pytest.raises(Exception, match="PEOPLE_SOFT_PASS"):
            await FLOWS["term"]()

    [post] = hook.posts
    assert post["json"]["subject"] == "dataload term run failed"
    assert post["json"]["text"].startswith("term-raw-flow: failed")


async def test_a_failed_run_can_send_an_e_mail(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.flows.smtp import smtp_receiver

    with smtp_receiver() as mailbox:
        address = f"mailto://127.0.0.1:{mailbox.port}?from=dataload@example.edu&to=ops@example.edu"
        monkeypatch.setenv("DATALOAD_ALERTS", address)
        monkeypatch.setenv("PEOPLE_SOFT_PASS", "wrong")

        with pytest.raises(Exception, match="PEOPLE_SOFT_PASS"):
            await FLOWS["term"]()

    [message] = mailbox.messages
    assert "Subject: dataload term run failed" in message and "To: ops@example.edu" in message
    assert "term-raw-flow: failed" in message and "/runs/flow-run/" in message


async def test_a_guarded_run_alerts(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    await FLOWS["person"]()
    world.sandbox.config.day = 2  # some people leave
    monkeypatch.setenv("DATALOAD_MAX_DELETE_SHARE", "0")
    with webhook_receiver() as hook:
        monkeypatch.setenv("DATALOAD_ALERTS", hook.url)
        with pytest.raises(IncompleteRun) as guarded:
            await FLOWS["person"]()

    assert guarded.value.report.status == "guarded"
    [post] = hook.posts
    assert post["json"]["title"] == "dataload person run guarded"
    assert post["json"]["message"].startswith("person-raw-flow: guarded")
