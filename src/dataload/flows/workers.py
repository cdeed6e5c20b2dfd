"""Local Prefect process workers, started for one sharded run and stopped after it.

With no work pool configured (DATALOAD_WORK_POOL), shards still run as flow runs of a work pool,
so that the code path is the production one: `LocalWorkers` creates a process pool if it does
not exist and starts `count` `prefect worker start --type process` children on it. Each worker
takes one flow run at a time (so N shards spread over N workers, N processes) and asks for work
every `poll_s` seconds (Prefect's default is 10 s: shards would wait that long to start).

The workers inherit this process's environment (PREFECT_API_URL, POSTGRES_*, the sources'
variables), run in a session of their own (a Ctrl-C in the terminal reaches us, and we stop
them), end when this process dies however it dies (`dataload.parent_death`), and write to
`log_path`, not to the terminal. They are stopped on leaving the context,
whatever ended it; a worker that does not stop on SIGTERM within `stop_timeout_s` is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists
from prefect.workers.process import ProcessWorker

from dataload.prefect_server import signal_group

__all__ = ["LOCAL_POOL", "LocalWorkers", "WorkerStartError", "ensure_process_pool"]

#: The process pool used when no work pool is configured.
LOCAL_POOL = "dataload-shards"


class WorkerStartError(RuntimeError):
    """A local worker exited before it could take work; the message names its log."""


async def ensure_process_pool(name: str) -> None:
    """Create the process work pool `name` unless it exists (created once, before the workers,
    so that N workers starting at once do not race to create it)."""
    async with get_client() as client:
        try:
            await client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type="process",
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                    description="dataload's local shard workers (started by dataload itself)",
                )
            )
        except ObjectAlreadyExists:
            pass


@dataclass
class LocalWorkers:
    """`count` process workers on `pool`, their output appended to `log_path`."""

    pool: str
    count: int
    log_path: Path
    poll_s: float = 1.0
    #: The one work queue of the pool the workers poll (None: all of its queues).
    work_queue: str | None = None
    stop_timeout_s: float = 20.0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    def start(self) -> None:
        """Start the workers without waiting for them: they take work once they have polled
        (a few seconds, mostly importing Prefect), which overlaps with the submissions."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PREFECT_WORKER_QUERY_SECONDS": str(self.poll_s),
            "PREFECT_WORKER_PREFETCH_SECONDS": str(max(self.poll_s, 1.0)),
            # Workers send heartbeats at this period; Prefect derives "offline" from it.
            "PREFECT_WORKER_HEARTBEAT_SECONDS": "10",
        }
        run = uuid.uuid4().hex[:6]
        queue = ["--work-queue", self.work_queue] if self.work_queue else []
        try:
            with self.log_path.open("ab") as log:
                for index in range(1, self.count + 1):
                    self.processes.append(
                        subprocess.Popen(
                            [
                                # Ends with this process, even one killed without a word.
                                *(sys.executable, "-m", "dataload.parent_death", str(os.getpid())),
                                *(sys.executable, "-m", "prefect", "worker", "start"),
                                *("--pool", self.pool, "--type", "process", *queue),
                                *("--name", f"{self.pool}-{run}-{index}"),
                                *("--limit", "1", "--install-policy", "never"),
                                "--no-create-pool-if-not-found",
                            ],
                            stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            env=env,
                            start_new_session=True,
                        )
                    )
        except BaseException:
            self.stop()
            raise

    def check(self) -> None:
        """Raise WorkerStartError if every worker has exited (none can take the shards)."""
        if self.processes and all(p.poll() is not None for p in self.processes):
            codes = sorted({p.returncode for p in self.processes})
            raise WorkerStartError(
                f"the local Prefect workers on pool {self.pool!r} exited (codes {codes}); "
                f"see {self.log_path}"
            )

    def stop(self) -> None:
        """Stop every worker and whatever it started (its whole session): SIGTERM, then
        SIGKILL after `stop_timeout_s`."""
        # Flow runs a worker started run in sessions of their own: found now, while they are
        # still the worker's children, and stopped with it.
        flow_runs = [child for p in self.processes for child in _children(p.pid)]
        for pid in [p.pid for p in self.processes] + flow_runs:
            signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        for process in self.processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(process.pid, signal.SIGKILL)
                process.wait()
            signal_group(process.pid, signal.SIGKILL)  # what is left of its session
        for pid in flow_runs:
            signal_group(pid, signal.SIGKILL)
        self.processes.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc; none found elsewhere)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name in parentheses may hold spaces: the fields follow its last ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children
