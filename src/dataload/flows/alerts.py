"""Alerts: a failed, partial or guarded run tells a configured destination, with a link to it.

DATALOAD_ALERTS lists the destinations, separated by spaces or commas:

- an Apprise URL: `json://host:port/path` (a webhook receiving JSON), `mailto://user:pass@host`
  (e-mail), `slack://...`, `msteams://...`, and the other services Apprise knows;
- a plain `http://` or `https://` URL: a webhook, posted JSON as with `json://`;
- `prefect:<block-type>/<name>`: a Prefect notification block saved on the server
  (`prefect:slack-webhook/ops`), so that a destination's secrets stay in Prefect.

The message is the run's one-line outcome and its page in the Prefect UI. Sending is best
effort: an unreachable destination is logged, never turns a run into a failure. A Prefect
automation on flow-run states is the other way to be told: partial and guarded runs end in
FAILED states named Partial and Guarded (`flows.states`), whose events are
`prefect.flow-run.Partial` and `prefect.flow-run.Guarded` (the README shows one that matches).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

__all__ = ["ALERT_STATUSES", "Alert", "alert_for", "destinations", "flow_run_page", "send_alert"]

logger = logging.getLogger("dataload.alerts")

#: Run outcomes someone should hear about (issue 7 adds partial and guarded to the ledger).
ALERT_STATUSES = frozenset({"failed", "partial", "guarded"})


@dataclass(frozen=True)
class Alert:
    title: str
    body: str


def alert_for(domain: str, status: str, outcome: str, page: str | None) -> Alert | None:
    """The alert a run's outcome calls for (None when it went well): `outcome` is the run's
    one-line headline, `page` its address in the Prefect UI."""
    if status not in ALERT_STATUSES:
        return None
    body = f"{outcome}\n{page}" if page else outcome
    return Alert(title=f"dataload {domain} run {status}", body=body)


def flow_run_page(flow_run_id: object) -> str | None:
    """A flow run's page in the Prefect UI (None without a UI address)."""
    from prefect.utilities.urls import url_for

    return url_for("flow-run", obj_id=str(flow_run_id)) if flow_run_id else None


def destinations(setting: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", setting.strip()) if part]


async def send_alert(alert: Alert, setting: str) -> int:
    """Send `alert` to every destination in `setting`; returns how many accepted it."""
    sent = 0
    for destination in destinations(setting):
        try:
            if destination.startswith("prefect:"):
                await _notify_block(destination.removeprefix("prefect:"), alert)
            else:
                await asyncio.to_thread(_notify_apprise, destination, alert)
            sent += 1
        except Exception as exc:  # best effort: the run's outcome stands whatever happens here
            logger.warning("alert not sent to %s: %s", _shown(destination), exc)
    return sent


def _notify_apprise(destination: str, alert: Alert) -> None:
    import apprise

    url = re.sub(r"^http(s?)://", lambda m: f"json{m.group(1)}://", destination)
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise ValueError("not a URL Apprise knows (see DATALOAD_ALERTS in .env.example)")
    if not notifier.notify(title=alert.title, body=alert.body):
        raise RuntimeError("the destination did not accept it")


async def _notify_block(name: str, alert: Alert) -> None:
    from prefect.blocks.core import Block

    block = await Block.aload(name)
    await block.notify(alert.body, subject=alert.title)  # type: ignore[attr-defined]


def _shown(destination: str) -> str:
    """The destination without credentials or query string, for the log."""
    return re.sub(r"//[^/@]*@", "//...@", destination).split("?", 1)[0]
