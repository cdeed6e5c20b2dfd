"""Run one flow as N shards on a Prefect work pool, from inside a parent flow, and wait for all.

```
parent flow ── run_shards(flow, [params₁ … paramsₙ]) ──▶ deployment `<flow>/<pool>` (module entrypoint)
                 │ N flow runs at once (run_deployment, subflows of the parent)
                 ▼
            work pool: DATALOAD_WORK_POOL's workers (process, Docker, Kubernetes),
                       or, with none configured, N local process workers started for the call
```

Prefect does the distribution: each shard is a flow run of a deployment that `run_shards`
creates or updates on the pool, so it runs wherever the pool's workers run it. The deployment
has no pull step and a module entrypoint (`dataload.flows.person.person_shard_flow`): workers
import the flow from the installed package, as `dataload` must be installed where they run.

The call returns when every shard completed. If one fails or crashes, the others are cancelled
(their work would not be used: the parent will not finish its run) and `ShardsFailed` names
each shard that did not complete and why. If the parent is itself interrupted, its shards are
cancelled too. Only `run_shards` returning means every shard completed.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import Flow
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.context import FlowRunContext
from prefect.deployments import arun_deployment
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.logging import get_logger
from prefect.states import State

from dataload.flows.workers import LOCAL_POOL, LocalWorkers, ensure_process_pool
from dataload.settings import Settings, get_settings

__all__ = [
    "ShardPool",
    "ShardRun",
    "ShardsFailed",
    "deploy_shard_flow",
    "run_shards",
    "shard_pool",
    "wait_for_shards",
]

logger = get_logger("dataload.shards")

#: Seconds between two looks at the shards' states (one API call for all of them).
POLL_S = 1.0
#: How long cancelled shards are given to stop (Prefect's workers allow a run 30 s to exit).
CANCEL_WAIT_S = 60.0
#: The same when the parent itself is being stopped (Ctrl-C): shorter, someone is waiting.
INTERRUPTED_CANCEL_WAIT_S = 15.0
#: How often a cancellation is sent again to shards still cancelling. Prefect delivers it to a
#: shard's process as an event, to those listening then: a shard still starting when it was
#: sent listens only afterwards and would run on (its worker polls for it every 120 s).
RESEND_CANCEL_S = 10.0


@dataclass(frozen=True)
class ShardPool:
    """Where shards run: a work pool, and job variables its flow runs get."""

    name: str
    job_variables: Mapping[str, Any] = field(default_factory=dict)
    #: The local workers serving the pool, when `shard_pool` started them.
    workers: LocalWorkers | None = None
    #: The work queue the shards go to (None: the deployment's default queue).
    work_queue: str | None = None


@dataclass(frozen=True)
class ShardRun:
    """One shard's flow run, as it ended (or as it was when the wait stopped)."""

    shard: int
    parameters: Mapping[str, Any]
    flow_run: FlowRun

    @property
    def state(self) -> State:
        assert self.flow_run.state is not None
        return self.flow_run.state

    @property
    def completed(self) -> bool:
        return self.flow_run.state is not None and self.flow_run.state.is_completed()

    def describe(self) -> str:
        state = self.flow_run.state
        what = state.name if state else "no state"
        message = f": {state.message}" if state and state.message else ""
        return f"shard {self.shard} ({self.flow_run.name}) {what}{message}"


class ShardsFailed(RuntimeError):
    """Shards that did not complete. `failed` lists them all; the message names those that
    failed or crashed, and why, before those cancelled because of them."""

    def __init__(self, failed: Sequence[ShardRun], total: int) -> None:
        self.failed = list(failed)
        self.total = total
        causes = [run for run in self.failed if not run.state.is_cancelled()] or self.failed
        cancelled = [run for run in self.failed if run not in causes]
        message = f"{len(causes)} of {total} shards did not complete: "
        message += "; ".join(run.describe() for run in causes)
        if cancelled:
            numbers = ", ".join(str(run.shard) for run in cancelled)
            message += f" (so shard{'s' if len(cancelled) > 1 else ''} {numbers} cancelled)"
        super().__init__(message)


@asynccontextmanager
async def shard_pool(
    workers: int, *, settings: Settings | None = None, poll_s: float = 1.0
) -> AsyncIterator[ShardPool]:
    """The work pool shards run on: DATALOAD_WORK_POOL (which must exist), or, with none
    configured, the local process pool `dataload-shards` with `workers` local process workers,
    started here and stopped on leaving, whatever ends the block."""
    settings = settings or get_settings()
    if settings.work_pool:
        async with get_client() as client:
            try:
                await client.read_work_pool(settings.work_pool)
            except ObjectNotFound:
                raise ValueError(
                    f"DATALOAD_WORK_POOL names the work pool {settings.work_pool!r}, which the "
                    "Prefect server does not have: create it (`prefect work-pool create`) or "
                    "unset DATALOAD_WORK_POOL to run shards on local workers"
                ) from None
        yield ShardPool(settings.work_pool)
        return
    await ensure_process_pool(LOCAL_POOL)
    # A queue of this call's own, which only its workers poll: two sharded runs at once never
    # take each other's shards (nor stop them when one of them ends).
    async with get_client() as client:
        queue = await client.create_work_queue(
            f"run-{uuid.uuid4().hex[:12]}", work_pool_name=LOCAL_POOL
        )
    local = LocalWorkers(
        LOCAL_POOL,
        workers,
        settings.home / "log" / "shard-workers.log",
        poll_s=poll_s,
        work_queue=queue.name,
    )
    try:
        local.start()
        yield ShardPool(LOCAL_POOL, _local_job_variables(), local, queue.name)
    finally:
        await asyncio.to_thread(local.stop)
        async with get_client() as client:
            await client.delete_work_queue_by_id(queue.id)


def _local_job_variables() -> dict[str, str]:
    python = shlex.quote(sys.executable)
    return {
        # Local shards start in the parent's folder, so they read the same `.env`.
        "working_dir": str(Path.cwd()),
        # The engine straight away, from this interpreter: by default the worker first runs a
        # process that prepares a workspace for code it would pull (there is none), which
        # costs a Python start-up, 4 s on a busy 2-core machine, before each shard starts.
        # The shard ends with its worker (`dataload.parent_death`), however the worker ends.
        "command": f"{python} -m dataload.parent_death - {python} -m prefect.engine",
    }


async def deploy_shard_flow(flow: Flow[..., Any], pool: str) -> UUID:
    """Create or update the deployment `<flow name>/<pool>` that runs `flow` on `pool`, from
    its module (no pull step, no schedule); returns its id."""
    deployment = RunnerDeployment.from_flow(
        flow,
        name=pool,
        entrypoint_type=EntrypointType.MODULE_PATH,
        work_pool_name=pool,
        tags=["dataload", "shard"],
        description=f"Shards of {flow.name}, started by its parent flow run (run_shards).",
        paused=False,
    )
    return await deployment.aapply(work_pool_name=pool)


async def run_shards(
    flow: Flow[..., Any],
    parameters: Sequence[Mapping[str, Any]],
    *,
    settings: Settings | None = None,
    pool: ShardPool | None = None,
    cancel_on_failure: bool = True,
) -> list[ShardRun]:
    """Run `flow` once per parameter dict, each a flow run on the work pool, all at once, and
    wait for all; returns them in order, every one completed.

    Called from a running flow, the shards are its subflows (the UI links them). `pool`
    defaults to `shard_pool(len(parameters))`: the configured pool, or local workers for this
    call. Raises ShardsFailed if any shard does not complete (the others cancelled first,
    unless `cancel_on_failure` is False: then all are awaited).
    """
    if not parameters:
        return []
    if pool is None:
        async with shard_pool(len(parameters), settings=settings) as local:
            return await run_shards(
                flow, parameters, pool=local, cancel_on_failure=cancel_on_failure
            )
    started = time.monotonic()
    deployment_id = await deploy_shard_flow(flow, pool.name)
    runs = await _submit(deployment_id, parameters, pool)
    logger.info(
        "%d shards of %s submitted to work pool %r in %.1f s",
        len(runs),
        flow.name,
        pool.name,
        time.monotonic() - started,
    )
    return await wait_for_shards(runs, cancel_on_failure=cancel_on_failure, pool=pool)


async def _submit(
    deployment_id: UUID, parameters: Sequence[Mapping[str, Any]], pool: ShardPool
) -> list[ShardRun]:
    parent = FlowRunContext.get()
    prefix = f"{parent.flow_run.name}-" if parent and parent.flow_run else ""
    total = len(parameters)

    async def submit(shard: int, params: Mapping[str, Any]) -> ShardRun:
        flow_run = await arun_deployment(
            deployment_id,
            parameters=dict(params),
            flow_run_name=f"{prefix}shard-{shard}-of-{total}",
            job_variables=dict(pool.job_variables) or None,
            work_queue_name=pool.work_queue,
            timeout=0,  # return at once: the shards are awaited together below
        )
        return ShardRun(shard, params, flow_run)

    answers = await asyncio.gather(
        *(submit(shard, params) for shard, params in enumerate(parameters, start=1)),
        return_exceptions=True,
    )
    runs = [answer for answer in answers if isinstance(answer, ShardRun)]
    for answer in answers:
        if isinstance(answer, BaseException):
            await _cancel(runs)  # submitted, but none of them would be awaited
            raise answer
    return runs


async def wait_for_shards(
    runs: Sequence[ShardRun],
    *,
    cancel_on_failure: bool = True,
    pool: ShardPool | None = None,
    poll_s: float = POLL_S,
) -> list[ShardRun]:
    """Wait until every shard's flow run ended; raise ShardsFailed unless all completed."""
    runs = list(runs)
    try:
        async with get_client() as client:
            while True:
                runs = await _refreshed(client, runs)
                ended = [run for run in runs if _is_final(run)]
                failed = [run for run in ended if not run.completed]
                if len(ended) == len(runs):
                    break
                if failed and cancel_on_failure:
                    runs = await _cancel_and_wait(runs, CANCEL_WAIT_S)
                    break
                if pool is not None and pool.workers is not None:
                    pool.workers.check()
                await asyncio.sleep(poll_s)
    except BaseException:
        # The parent was interrupted, or lost its workers: shards must not go on alone. They
        # are given a moment to end as cancelled before local workers are stopped.
        await asyncio.shield(_cancel_and_wait(runs, INTERRUPTED_CANCEL_WAIT_S))
        raise
    failed = [run for run in runs if not run.completed]
    if failed:
        raise ShardsFailed(failed, len(runs))
    return runs


def _is_final(run: ShardRun) -> bool:
    return run.flow_run.state is not None and run.flow_run.state.is_final()


async def _refreshed(client: PrefectClient, runs: list[ShardRun]) -> list[ShardRun]:
    ids = [run.flow_run.id for run in runs]
    found = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    by_id = {flow_run.id: flow_run for flow_run in found}
    return [
        ShardRun(run.shard, run.parameters, by_id.get(run.flow_run.id, run.flow_run))
        for run in runs
    ]


async def _cancel_and_wait(runs: list[ShardRun], wait_s: float) -> list[ShardRun]:
    """Cancel the shards not yet ended and wait (up to `wait_s`) until they have, cancelling
    again every RESEND_CANCEL_S those that have not."""
    await _cancel(runs)
    deadline = time.monotonic() + wait_s
    resend = time.monotonic() + RESEND_CANCEL_S
    async with get_client() as client:
        while time.monotonic() < deadline:
            runs = await _refreshed(client, runs)
            if all(_is_final(run) for run in runs):
                break
            if time.monotonic() >= resend:
                await _cancel(runs)
                resend = time.monotonic() + RESEND_CANCEL_S
            await asyncio.sleep(POLL_S)
    return runs


async def _cancel(runs: Sequence[ShardRun]) -> None:
    """Ask Prefect to cancel every shard not yet ended: a running one is stopped by its worker
    (Cancelling, sent again to one still cancelling), one no worker took yet is cancelled
    outright."""
    pending = [run for run in runs if not _is_final(run)]
    if not pending:
        return
    async with get_client() as client:
        for run in pending:
            try:
                current = await client.read_flow_run(run.flow_run.id)
                if current.state is None or current.state.is_final():
                    continue
                taken = current.state.type in (
                    StateType.RUNNING,
                    StateType.PENDING,
                    StateType.CANCELLING,
                )
                state = State(
                    type=StateType.CANCELLING if taken else StateType.CANCELLED,
                    message="cancelled by its parent: another shard failed or it was stopped",
                )
                await client.set_flow_run_state(run.flow_run.id, state, force=True)
            except Exception as exc:  # best effort: report, and cancel the others
                logger.warning("could not cancel shard %d: %s", run.shard, exc)
