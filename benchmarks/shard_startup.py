"""What sharding costs before any work: local process workers, deployment, submission, start.

    uv run python benchmarks/shard_startup.py [--shards 1 2 4] [--repeat 2]

Starts a Prefect server of its own (API only), then for each shard count runs, from a parent
flow, `shard_pool(n)` + `run_shards` of a flow that does nothing (tests/flows/shard_probe.py),
on n local process workers started for the call, and prints, from the call:
- running: when the first and the last shard's flow function began (each shard notes it);
- returned: when run_shards returned (every shard completed and seen so by the parent's poll);
- stopped: when the workers were stopped (leaving `shard_pool`).
Beside it, the same flow run as an ordinary subflow in the parent's process, the cost without
distribution. The machine is usually shared: each count runs --repeat times and the best is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from dataload.prefect_server import PrefectServer, free_port

REPO = Path(__file__).resolve().parents[1]


def _prepare_environment(home: Path, port: int) -> None:
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    os.environ["PREFECT_HOME"] = str(home / "client")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DATALOAD_HOME"] = str(home / "dataload")
    os.environ.pop("DATALOAD_WORK_POOL", None)
    # The workers import the probe flow from the repository, as they import dataload's flows.
    sys.path.insert(0, str(REPO))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
    )


async def _one(shards: int, home: Path) -> dict[str, float]:
    from prefect import flow
    from tests.flows.shard_probe import shard_probe

    from dataload.flows.shards import run_shards, shard_pool
    from dataload.settings import Settings

    record = home / f"record-{shards}-{time.monotonic_ns()}.jsonl"
    settings = Settings(_env_file=None)
    timings: dict[str, float] = {}

    @flow(name="shard-startup-parent")
    async def parent() -> None:
        called = time.time()
        async with shard_pool(shards, settings=settings) as pool:
            await run_shards(
                shard_probe,
                [{"shard": i, "record": str(record)} for i in range(1, shards + 1)],
                pool=pool,
            )
            timings["returned"] = time.time() - called
        timings["stopped"] = time.time() - called
        began = sorted(
            json.loads(line)["from"] - called for line in record.read_text().splitlines()
        )
        timings["first running"], timings["last running"] = began[0], began[-1]

    await parent()
    return timings


async def _in_process(home: Path) -> float:
    """The same flow as an ordinary subflow of the parent, in the parent's process."""
    from prefect import flow
    from tests.flows.shard_probe import shard_probe

    @flow(name="shard-startup-parent")
    async def parent() -> float:
        called = time.time()
        await shard_probe(shard=0, record=str(home / "in-process.jsonl"))
        return time.time() - called

    return await parent()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="dataload-shard-bench-"))
    port = free_port()
    _prepare_environment(home, port)
    server = PrefectServer(home=home / "server", port=port, services=False)
    server.start()
    try:
        from dataload.flows.flush import flush_prefect

        rows = []
        for shards in args.shards:
            runs = [asyncio.run(_one(shards, home)) for _ in range(args.repeat)]
            rows.append((shards, {key: min(run[key] for run in runs) for key in runs[0]}))
        in_process = min(asyncio.run(_in_process(home)) for _ in range(args.repeat))
        flush_prefect()
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)

    columns = ("first running", "last running", "returned", "stopped")
    print(f"\nSeconds from the run_shards call (best of {args.repeat}), {os.cpu_count()} CPUs:\n")
    print(f"| shards | {' | '.join(columns)} |")
    print(f"|---:|{'---:|' * len(columns)}")
    for shards, timing in rows:
        print(f"| {shards} | " + " | ".join(f"{timing[c]:.1f}" for c in columns) + " |")
    print(f"\nThe same flow as an in-process subflow (no worker): {in_process:.2f} s")


if __name__ == "__main__":
    main()
