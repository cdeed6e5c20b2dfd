"""The deployments, defined once, from the domains' declarations: one per schedule of every
registered domain, named `<domain>-<schedule>` (`term-raw-daily`, `jokes-every-10-minutes`).

A domain with a flow of its own (term, course, person) deploys that flow; the others deploy the
generic flow with their name and the schedule's parameters. `dataload serve` serves them from
this process (`prefect.serve`); `prefect.yaml` declares the same for `prefect deploy --all` and
a process worker (tests/flows/test_deploy.py keeps the two in step; a plugin package's domains
are served, and go into that package's own prefect.yaml).
"""

from __future__ import annotations

from typing import Any

from prefect import Flow, serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Interval, Schedule

from dataload.domains import DomainSpec, all_domains
from dataload.domains import Schedule as DomainSchedule
from dataload.domains.university import NEW_YORK as TIMEZONE
from dataload.flows.domain import domain_flow, own_flow

__all__ = ["TIMEZONE", "runner_deployments", "serve_deployments"]


def _prefect_schedule(schedule: DomainSchedule) -> Schedule:
    if schedule.cron is not None:
        return Cron(schedule.cron, timezone=schedule.timezone)
    return Interval(schedule.interval_s, timezone=schedule.timezone)


def _deployment(spec: DomainSpec, schedule: DomainSchedule) -> RunnerDeployment:
    flow: Flow[..., Any] = domain_flow
    parameters: dict[str, Any] = {
        "domain": spec.name,
        "params": dict(schedule.parameters),
        "full_refresh": schedule.full_refresh,
    }
    if spec.flow is not None:
        flow, parameters = own_flow(spec), {}
    return flow.to_deployment(
        name=f"{spec.name}-{schedule.name}",
        schedules=[_prefect_schedule(schedule)],
        parameters=parameters,
        concurrency_limit=1,
        tags=spec.deployment_tags,
        description=" ".join(filter(None, (spec.description, schedule.description))),
        paused=False,
    )


def runner_deployments() -> list[RunnerDeployment]:
    """Every domain's deployments, for this process: one run at a time each, unpaused (a Ctrl-C
    on an earlier `dataload serve` paused them). The university's come first, in the order they
    depend on each other."""
    domains = all_domains()
    first = [domains.pop(name) for name in ("term", "course", "person") if name in domains]
    return [
        _deployment(spec, schedule)
        for spec in [*first, *domains.values()]
        for schedule in spec.schedules
    ]


def serve_deployments(deployments: list[RunnerDeployment] | None = None) -> None:
    """Serve these deployments (default: every domain's) until interrupted (Ctrl-C pauses
    their schedules)."""
    serve(*(runner_deployments() if deployments is None else deployments))
