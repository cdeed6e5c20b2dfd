"""The deployments, defined once, from the domains' declarations: one per schedule of every
registered domain, named `<domain>-<schedule>` (`term-raw-daily`, `jokes-every-10-minutes`).

A domain with a flow of its own (term, course, person) deploys that flow; the others deploy the
generic flow with their name and the schedule's parameters. `dataload serve` serves them from
this process (a Prefect `Runner`, stopped by Ctrl-C or SIGTERM); `prefect.yaml` declares the same for `prefect deploy --all` and
a process worker (tests/flows/test_deploy.py keeps the two in step; a plugin package's domains
are served, and go into that package's own prefect.yaml).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any
from uuid import UUID

from prefect import Flow
from prefect.deployments.runner import RunnerDeployment
from prefect.runner import Runner
from prefect.schedules import Cron, Interval, Schedule

from dataload.domains import DomainSpec, all_domains
from dataload.domains import Schedule as DomainSchedule
from dataload.domains.university import NEW_YORK as TIMEZONE
from dataload.flows.domain import domain_flow, own_flow

__all__ = ["SERVED_BY", "TIMEZONE", "runner_deployments", "serve_deployments"]

#: Said on each deployment's page: the UI shows a served deployment "Not Ready" whenever the
#: process serving it is not running, which is no fault of the deployment.
SERVED_BY = (
    "Served by `dataload serve`: while it is not running, the UI shows this deployment "
    "Not Ready and its scheduled runs wait (Late); start `dataload serve` to run them."
)


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
        description=" ".join(filter(None, (spec.description, schedule.description, SERVED_BY))),
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


class _Terminated(BaseException):
    """SIGTERM before the runner took the signal over (while the deployments register)."""


def serve_deployments(
    deployments: list[RunnerDeployment] | None = None,
    *,
    on_register: Callable[[], None] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> str:
    """Serve these deployments (default: every domain's) until Ctrl-C or SIGTERM, either of
    which pauses their schedules; returns which one stopped it. `on_register` is called as
    they begin to register (a stop is caught from then on), `on_ready` once the runner serves
    them: registering takes seconds on a busy machine, and a stop that comes earlier pauses
    what was registered so far."""
    runner = _Runner(pause_on_shutdown=True)
    runner.on_ready = on_ready
    registered: list[UUID] = []

    def terminate(*_: Any) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)  # the runner installs its own later
    try:
        if on_register is not None:
            on_register()
        for deployment in runner_deployments() if deployments is None else deployments:
            registered.append(runner.add_deployment(deployment))
        asyncio.run(runner.serve())
    except KeyboardInterrupt:
        stopped_by = "Ctrl-C"
    except _Terminated:
        stopped_by = "SIGTERM"
    else:
        return "SIGTERM"
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not runner.started_once:  # stopped before the runner could pause the schedules itself
        asyncio.run(_pause(registered))
    return stopped_by


async def _pause(deployment_ids: list[UUID]) -> None:
    from prefect import get_client

    async with get_client() as client:
        for deployment_id in deployment_ids:
            await client.pause_deployment(deployment_id)


class _Runner(Runner):
    """Prefect's runner, stopped by SIGTERM as by Ctrl-C: its task is cancelled, so that the
    runner pauses the schedules on its way out. (Prefect's own SIGTERM handler calls the runner's
    `stop`, which in the event loop's thread only makes a coroutine nobody awaits: "coroutine
    'Runner.astop' was never awaited", and the process exits at once.)"""

    _main: asyncio.Task[None] | None = None
    _terminated = False
    on_ready: Callable[[], None] | None = None
    started_once = False

    async def __aenter__(self) -> _Runner:
        runner = await super().__aenter__()
        self.started_once = True
        if self.on_ready is not None:
            self.on_ready()
        return runner

    async def serve(self) -> None:
        self._main = asyncio.current_task()
        try:
            await self.start()
        except asyncio.CancelledError:
            if not self._terminated:
                raise

    def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:
        self._terminated = True
        if self._main is not None:
            self._main.get_loop().call_soon_threadsafe(self._main.cancel)
