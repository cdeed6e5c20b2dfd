"""The three daily deployments, defined once.

`dataload serve` serves them from this process (`prefect.serve`); `prefect.yaml` declares the
same three for `prefect deploy --all` and a process worker (tests/flows/test_deploy.py keeps
the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import Flow, serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from dataload.flows.course import course_raw_flow
from dataload.flows.person import person_raw_flow
from dataload.flows.term import term_raw_flow

__all__ = ["DAILY_LOADS", "TIMEZONE", "DailyLoad", "runner_deployments", "serve_daily_loads"]

TIMEZONE = "America/New_York"


@dataclass(frozen=True)
class DailyLoad:
    name: str
    flow: Flow[[], Any]
    cron: str
    tags: tuple[str, ...]
    description: str


DAILY_LOADS = (
    DailyLoad(
        "term-raw-daily",
        term_raw_flow,
        "0 1 * * *",
        ("dataload", "domain:term", "source:peoplesoft"),
        "Terms from PeopleSoft, daily at 01:00 New York time.",
    ),
    DailyLoad(
        "course-raw-daily",
        course_raw_flow,
        "0 2 * * *",
        ("dataload", "domain:course", "source:snaplogic"),
        "Courses of the active terms from SnapLogic, daily at 02:00 New York time.",
    ),
    DailyLoad(
        "person-raw-daily",
        person_raw_flow,
        "0 3 * * *",
        (
            "dataload",
            "domain:person",
            "source:peoplesoft",
            "source:sap",
            "source:vds",
            "source:snaplogic",
        ),
        "People from PeopleSoft, SAP, VDS and SnapLogic, daily at 03:00 New York time.",
    ),
)


def runner_deployments() -> list[RunnerDeployment]:
    """The daily loads as deployments of this process: one run at a time each, unpaused (a
    Ctrl-C on an earlier `dataload serve` paused them)."""
    return [
        load.flow.to_deployment(
            name=load.name,
            schedules=[Cron(load.cron, timezone=TIMEZONE)],
            concurrency_limit=1,
            tags=list(load.tags),
            description=load.description,
            paused=False,
        )
        for load in DAILY_LOADS
    ]


def serve_daily_loads() -> None:
    """Serve the daily loads until interrupted (Ctrl-C pauses their schedules)."""
    serve(*runner_deployments())
