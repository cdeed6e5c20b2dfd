"""The deployments, defined once: the university's three daily loads, and one per schedule of
every declared domain that runs on the generic flow (`<domain>-<schedule>`).

`dataload serve` serves them from this process (`prefect.serve`); `prefect.yaml` declares the
same for `prefect deploy --all` and a process worker (tests/flows/test_deploy.py keeps the two
in step; a plugin package's domains are served, and go into its own prefect.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import Flow, serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Interval, Schedule

from dataload.domains import Schedule as DomainSchedule
from dataload.domains import all_domains
from dataload.flows.course import course_raw_flow
from dataload.flows.domain import domain_flow
from dataload.flows.person import person_raw_flow
from dataload.flows.term import term_raw_flow

__all__ = [
    "DAILY_LOADS",
    "TIMEZONE",
    "DailyLoad",
    "domain_deployments",
    "runner_deployments",
    "serve_daily_loads",
]

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


def _prefect_schedule(schedule: DomainSchedule) -> Schedule:
    if schedule.cron is not None:
        return Cron(schedule.cron, timezone=schedule.timezone)
    return Interval(schedule.interval_s, timezone=schedule.timezone)


def domain_deployments() -> list[RunnerDeployment]:
    """A deployment of the generic flow per schedule of every registered domain that uses it."""
    return [
        domain_flow.to_deployment(
            name=f"{spec.name}-{schedule.name}",
            schedules=[_prefect_schedule(schedule)],
            parameters={
                "domain": spec.name,
                "params": dict(schedule.parameters),
                "full_refresh": schedule.full_refresh,
            },
            concurrency_limit=1,
            tags=spec.deployment_tags,
            description=" ".join(filter(None, (spec.description, schedule.description))),
            paused=False,
        )
        for spec in all_domains().values()
        if spec.source is not None
        for schedule in spec.schedules
    ]


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
    ] + domain_deployments()


def serve_daily_loads() -> None:
    """Serve every deployment until interrupted (Ctrl-C pauses their schedules)."""
    serve(*runner_deployments())
