"""Send what Prefect still has queued (flow logs, events) before its server goes away.

Prefect ships logs and events from background workers; a process that stops its own server
(the demo, tests, benchmarks) flushes them first, or the workers retry against a closed port
for a minute at exit.
"""

from __future__ import annotations

from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker

__all__ = ["flush_prefect"]


def flush_prefect(timeout: float = 10.0) -> None:
    """Wait (up to `timeout` seconds each) until queued logs and events reach the API."""
    APILogWorker.drain_all(timeout=timeout)
    EventsWorker.drain_all(timeout=timeout)
