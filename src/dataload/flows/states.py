"""How a run ends in Prefect: only a run that did all it should is a green Completed.

| the ledger's status | the flow run's Prefect state                                        |
|---------------------|---------------------------------------------------------------------|
| complete            | Completed; its result is the run's `LoadReport`                     |
| incremental         | Completed (it deletes nobody by design)                             |
| partial             | type FAILED, named `Partial`; its message is the ledger's outcome   |
| guarded             | type FAILED, named `Guarded`; its message is the ledger's outcome   |
| failed              | Failed, as Prefect ends a flow that raised (its message the error)  |

A partial or guarded run published its report and sent its alerts like any other; its state's
data is an `IncompleteRun` carrying that report, so `dataload run` and the demo still show it,
and calling the flow directly raises it. Prefect names a flow run's state event after the
state's name: such runs emit `prefect.flow-run.Partial` and `prefect.flow-run.Guarded`, never
`prefect.flow-run.Failed`, and an automation must name them (or match the resource label
`prefect.state-type: FAILED`; see the README, "Deletions you can trust").

Partial and guarded runs are not retried, whatever retries a deployment gives the flow: the
run finished, and a second attempt would read everything again to meet the same missing people
or the same guard. Prefect retries every FAILED state of a flow run that has retries left, so
the run's retries are spent (its policy set to the attempts it made) before the state is
returned. A run that raised keeps its retries, and the person flow's retry resumes it.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.states import Failed, State

from dataload.flows.report import LoadReport

__all__ = ["STATE_NAMES", "IncompleteRun", "final_state", "run_report"]

#: The ledger statuses that end a flow run in a FAILED state of their own name.
STATE_NAMES = {"partial": "Partial", "guarded": "Guarded"}


class IncompleteRun(Exception):
    """A partial or guarded run: the data of its Prefect state, and what calling the flow
    directly raises. `report` is the run's report (published and alerted already)."""

    def __init__(self, report: LoadReport) -> None:
        super().__init__(report)  # pickled with its report, for a persisted result
        self.report = report

    def __str__(self) -> str:
        return self.report.headline()


async def final_state(report: LoadReport) -> LoadReport | State[Any]:
    """What a flow returns at its end: the report of a run that went as it should, else a
    FAILED state named after the ledger's status, its message the run's outcome."""
    name = STATE_NAMES.get(report.status)
    if name is None:
        return report
    await _spend_retries(name)
    return Failed(
        name=name, message=report.outcome or report.headline(), data=IncompleteRun(report)
    )


async def run_report(state: State[Any]) -> LoadReport | BaseException | None:
    """The report of a finished flow run's state: a complete run's result, a partial or guarded
    run's `IncompleteRun.report`; the exception a failed run raised (None without one)."""
    result = await state.aresult(raise_on_failure=False)
    return result.report if isinstance(result, IncompleteRun) else result


async def _spend_retries(name: str) -> None:
    """Leave the current flow run no retries, so that Prefect takes its FAILED state as final."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    async with get_client() as client:
        flow_run = await client.read_flow_run(context.flow_run.id)
        policy = flow_run.empirical_policy
        if not policy.retries or flow_run.run_count > policy.retries:
            return
        spent = policy.model_copy(update={"retries": flow_run.run_count - 1})
        await client.update_flow_run(flow_run.id, empirical_policy=spent)
    get_run_logger().info("a %s run is not retried (the flow's retries are for failures)", name)
