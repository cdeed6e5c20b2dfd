"""Alerts: a failed, partial or guarded run tells a configured destination, with a link to it.

DATALOAD_ALERTS lists the destinations (`dataload.destinations`: checked before a run):

- a plain `http://` or `https://` URL: a webhook, posted JSON `{"version", "title", "message",
  "attachments", "type"}` (the shape of Apprise's `json://`) at exactly that URL, its query
  string included (a webhook that authenticates by `?token=` gets it);
- an Apprise URL: `json://host:port/path`, `mailto://user:pass@host` (e-mail), `slack://...`,
  `msteams://...`, and the other services Apprise knows;
- `prefect:<block-type>/<name>`: a Prefect notification block saved on the server
  (`prefect:slack-webhook/ops`), so that a destination's secrets stay in Prefect.

A run that went well but found its source's shape drifted (a path vanished or changed type,
the services it breaks: lake/shape.py) alerts too, as a warning.

The message is the run's one-line outcome and its page in the Prefect UI (at DATALOAD_UI_URL
when set); its type is `failure` for a failed run and `warning` for a partial or guarded one.
Sending never turns a run into a failure, but a destination that did not take the alert is
said: `send_alert` returns why, the run's summary names it, and the `dataload.alerts` logger
warns (the command line shows those warnings). A Prefect automation on flow-run states is the
other way to be told: partial and guarded runs end in FAILED states named Partial and Guarded
(`flows.states`), whose events are `prefect.flow-run.Partial` and `prefect.flow-run.Guarded`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from dataload.destinations import destinations, is_webhook, shown

__all__ = ["ALERT_STATUSES", "Alert", "alert_for", "flow_run_page", "send_alert"]

logger = logging.getLogger("dataload.alerts")

#: Run outcomes someone should hear about (issue 7 adds partial and guarded to the ledger).
ALERT_STATUSES = frozenset({"failed", "partial", "guarded"})
#: The alert's type (Apprise's notify types): a failure, or a run that needs a look.
SEVERITY = {"failed": "failure", "partial": "warning", "guarded": "warning"}
#: Seconds a webhook has to take an alert.
WEBHOOK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Alert:
    title: str
    body: str
    #: Apprise's notify type: "failure" or "warning".
    severity: str = "failure"


def alert_for(
    domain: str, status: str, outcome: str, page: str | None, *, drift: Sequence[str] = ()
) -> Alert | None:
    """The alert a run's outcome calls for (None when it went well): `outcome` is the run's
    one-line headline, `page` its address in the Prefect UI. A run that went well but found its
    source's shape drifted (`drift`: the run's schema changes, the services they break) is a
    warning: the services that read a vanished or retyped path hear of it before their users."""
    body = f"{outcome}\n{page}" if page else outcome
    if status not in ALERT_STATUSES:
        if not drift:
            return None
        return Alert(
            title=f"dataload {domain} run {status}: schema drift", body=body, severity="warning"
        )
    return Alert(title=f"dataload {domain} run {status}", body=body, severity=SEVERITY[status])


def flow_run_page(flow_run_id: object, ui_url: str | None = None) -> str | None:
    """A flow run's page in the Prefect UI, at `ui_url` (DATALOAD_UI_URL) when given, else
    at the UI of the API this process uses (None without a UI address)."""
    if not flow_run_id:
        return None
    if ui_url:
        return f"{ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"
    from prefect.utilities.urls import url_for

    return url_for("flow-run", obj_id=str(flow_run_id))


async def send_alert(alert: Alert, setting: str) -> list[str]:
    """Send `alert` to every destination in `setting`; returns one line per destination that
    did not take it ("https://hooks.example.edu/dataload: HTTP 401"), each also logged."""
    unsent = []
    for destination in destinations(setting):
        try:
            if destination.startswith("prefect:"):
                await _notify_block(destination.removeprefix("prefect:"), alert)
            elif is_webhook(destination):
                await _post_webhook(destination, alert)
            else:
                await asyncio.to_thread(_notify_apprise, destination, alert)
        except Exception as exc:  # best effort: the run's outcome stands whatever happens here
            reason = " ".join(str(exc).split()) or type(exc).__name__
            unsent.append(f"{shown(destination)}: {reason}")
            logger.warning("alert not sent to %s", unsent[-1])
    return unsent


async def _post_webhook(url: str, alert: Alert) -> None:
    """POST the alert as JSON to `url` as configured, query string and all."""
    import httpx

    payload = {
        "version": "1.0",
        "title": alert.title,
        "message": alert.body,
        "attachments": [],
        "type": alert.severity,
    }
    try:
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S) as client:
            answer = await client.post(url, json=payload)
    except httpx.ConnectError as exc:
        raise ConnectionError(f"could not connect to {_host_port(url)} ({exc})") from None
    except httpx.TimeoutException:
        raise TimeoutError(f"no answer within {WEBHOOK_TIMEOUT_S:.0f} s") from None
    if answer.status_code >= 300:
        raise RuntimeError(f"HTTP {answer.status_code} {answer.reason_phrase}".strip())


def _host_port(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    return f"{parts.hostname}:{port}"


def _notify_apprise(destination: str, alert: Alert) -> None:
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(destination):
        raise ValueError("not a URL Apprise knows (see DATALOAD_ALERTS in .env.example)")
    with _apprise_reasons() as reasons:
        accepted = notifier.notify(title=alert.title, body=alert.body, notify_type=alert.severity)
    if not accepted:
        raise RuntimeError(reasons[-1] if reasons else "the destination did not accept it")


async def _notify_block(name: str, alert: Alert) -> None:
    from prefect.blocks.core import Block

    block = await Block.aload(name)
    await block.notify(alert.body, subject=alert.title)  # type: ignore[attr-defined]


@contextmanager
def _apprise_reasons() -> Iterator[list[str]]:
    """Apprise says why a notification failed only in its log: keep those lines."""
    reasons: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            reasons.append(record.getMessage())

    handler = Keep(logging.WARNING)
    apprise_logger = logging.getLogger("apprise")
    apprise_logger.addHandler(handler)
    try:
        yield reasons
    finally:
        apprise_logger.removeHandler(handler)
