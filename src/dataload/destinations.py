"""What DATALOAD_ALERTS names: its destinations, checked before a run and probed for an answer.

Destinations are separated by spaces or commas, each one of:

- a plain `http://` or `https://` URL: a webhook, posted JSON exactly at that URL, its query
  string (`?token=...`) included;
- `prefect:<block-type>/<name>`: a Prefect notification block saved on the server;
- any other Apprise URL (`json://`, `mailto://`, `slack://`, `msteams://`, ...).

`check_destinations` refuses, in one line naming it, a destination that cannot be one (no
scheme, a scheme Apprise does not know, a webhook without a host); `probe_webhooks` says which
webhooks do not answer at all (nothing listens, the name does not resolve) before a run needs
them. Shown destinations lose their credentials and query string (`shown`): a token in a URL is
a secret. Nothing here imports Prefect.
"""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

__all__ = [
    "DestinationError",
    "check_destinations",
    "destinations",
    "is_webhook",
    "probe_webhooks",
    "shown",
]

_BLOCK = re.compile(r"^prefect:[a-z0-9][a-z0-9-]*/[^/\s]+$")


class DestinationError(ValueError):
    """A destination in DATALOAD_ALERTS that cannot be one; the message names it (redacted)."""


def destinations(setting: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", setting.strip()) if part]


def is_webhook(destination: str) -> bool:
    return destination.lower().startswith(("http://", "https://"))


def shown(destination: str) -> str:
    """The destination without credentials or query string, for a message or the log."""
    without_query = destination.split("?", 1)[0]
    return re.sub(r"^([a-z][a-z0-9+.-]*://)?[^/@]*@", r"\1...@", without_query, flags=re.I)


def check_destinations(setting: str) -> None:
    """Raise DestinationError naming the first destination of `setting` that cannot be one."""
    for destination in destinations(setting):
        problem = _problem(destination)
        if problem:
            raise DestinationError(f"DATALOAD_ALERTS: {shown(destination)} {problem}")


def _problem(destination: str) -> str | None:
    if destination.startswith("prefect:"):
        if _BLOCK.match(destination):
            return None
        return (
            "is not a Prefect block: write prefect:<block-type>/<name> (prefect:slack-webhook/ops)"
        )
    if "://" not in destination:
        return (
            f"has no scheme: write https://{shown(destination)} for a webhook, or an Apprise "
            "URL (mailto://, slack://, ...)"
        )
    if is_webhook(destination):
        parts = urlsplit(destination)
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            return "has a port that is not a number"
        return None if parts.hostname else "has no host name"
    import apprise

    if apprise.Apprise().add(destination):
        return None
    return "is not a URL Apprise knows (its scheme, or a part of it, is wrong)"


def probe_webhooks(setting: str, *, timeout: float = 3.0) -> list[str]:
    """Why each webhook of `setting` would not be reached ("... : nothing listens on host:port"),
    by opening a TCP connection to it; an empty list when each answered."""
    problems = []
    for destination in destinations(setting):
        if not is_webhook(destination):
            continue
        parts = urlsplit(destination)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except socket.gaierror:
            problems.append(f"{shown(destination)}: the host name {host} does not resolve")
        except ConnectionRefusedError:
            problems.append(f"{shown(destination)}: nothing listens on {host}:{port}")
        except OSError as exc:
            reason = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or exc
            problems.append(f"{shown(destination)}: {host}:{port} does not answer ({reason})")
    return problems
