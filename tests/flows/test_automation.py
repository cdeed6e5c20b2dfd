"""The README's Prefect automation, created with `prefect automation create` on a Prefect server
running its services (events, triggers, actions), fires for a partial run and not for a
complete one: what an operator relies on to hear of runs that deleted nobody."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prefect.settings import PREFECT_API_URL, temporary_settings
from tests.flows.loaders import wait_for
from tests.flows.webhook import webhook_receiver
from tests.flows.world import World

from dataload.flows import person_raw_flow
from dataload.flows.states import IncompleteRun
from dataload.prefect_server import PrefectServer, free_port

pytestmark = pytest.mark.slow

README = Path(__file__).parents[2] / "README.md"


def readme_automation() -> dict:
    """The automation the README shows (its YAML block named "dataload runs that need a look")."""
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.DOTALL)
    [block] = [block for block in blocks if "name: dataload runs that need a look" in block]
    return yaml.safe_load(block)


async def test_the_readme_automation_fires_for_a_partial_run_not_for_a_complete_one(
    world: World, tmp_path: Path
) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    server = PrefectServer(home=tmp_path / "prefect", port=free_port(), services=True)
    await asyncio.to_thread(server.start)
    try:
        with webhook_receiver() as hook, temporary_settings({PREFECT_API_URL: server.api_url}):
            block_id = await CustomWebhookNotificationBlock(
                name="ops", url=hook.url, json_data={"subject": "{{subject}}", "text": "{{body}}"}
            ).save("dataload-ops")
            automation = readme_automation()
            automation["actions"][0]["block_document_id"] = str(block_id)
            path = tmp_path / "dataload-automation.yaml"
            path.write_text(yaml.safe_dump(automation))
            created = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "prefect", "automation", "create", "--from-file", str(path)],
                env={**os.environ, "PREFECT_API_URL": server.api_url},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert created.returncode == 0, created.stdout + created.stderr

            await person_raw_flow()  # complete: no notification
            world.sandbox.config.left_out_rate = 0.5  # SnapLogic leaves people out
            with pytest.raises(IncompleteRun) as partial:
                await person_raw_flow()

            async def notified() -> bool:
                return bool(hook.posts)

            await wait_for("the automation's notification", notified)
            await asyncio.sleep(3)  # anything else the automation would send
    finally:
        await asyncio.to_thread(server.stop)

    report = partial.value.report
    [post] = hook.posts
    assert post["json"]["subject"].endswith(": Partial")
    outcome, page = post["json"]["text"].strip().splitlines()
    assert outcome.endswith(f" ended Partial: {report.outcome}")
    assert page.startswith(f"{server.url}/runs/flow-run/")
